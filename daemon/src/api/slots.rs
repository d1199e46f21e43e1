//! Caps on what is open at once, per key: handshakes per peer process, sessions per origin.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts what is open per key (a peer process, an origin) up to a maximum.
#[derive(Debug)]
pub struct Slots<K> {
    max: usize,
    open: Mutex<HashMap<K, usize>>,
    /// Every slot taken, counted or not.
    taken: AtomicUsize,
}

/// One place in [`Slots`]; freed on drop.
pub struct Slot<'a, K: Hash + Eq> {
    slots: &'a Slots<K>,
    key: Option<K>,
}

impl<K: Hash + Eq + Clone> Slots<K> {
    pub fn new(max: usize) -> Self {
        Self {
            max,
            open: Mutex::new(HashMap::new()),
            taken: AtomicUsize::new(0),
        }
    }

    /// The keys holding places now, with how many each (the tray's "Connected pages").
    pub fn open(&self) -> Vec<(K, usize)> {
        self.open
            .lock()
            .map(|open| open.iter().map(|(k, n)| (k.clone(), *n)).collect())
            .unwrap_or_default()
    }

    /// Slots taken now, for every key and none.
    pub fn in_progress(&self) -> usize {
        self.taken.load(Ordering::Relaxed)
    }

    /// A place for `key`, or `None` when it has `max` already. `None` keys are not counted.
    pub fn take(&self, key: Option<K>) -> Option<Slot<'_, K>> {
        if let Some(key) = &key {
            let mut open = self.open.lock().ok()?;
            let count = open.entry(key.clone()).or_insert(0);
            if *count >= self.max {
                return None;
            }
            *count += 1;
        }
        self.taken.fetch_add(1, Ordering::Relaxed);
        Some(Slot { slots: self, key })
    }
}

impl<K: Hash + Eq> Drop for Slot<'_, K> {
    fn drop(&mut self) {
        self.slots.taken.fetch_sub(1, Ordering::Relaxed);
        if let (Some(key), Ok(mut open)) = (&self.key, self.slots.open.lock())
            && let Some(count) = open.get_mut(key)
        {
            *count -= 1;
            if *count == 0 {
                open.remove(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_gets_its_maximum_and_its_places_back() {
        let slots = Slots::new(2);
        let a = slots.take(Some(7)).expect("first");
        let _b = slots.take(Some(7)).expect("second");
        assert!(slots.take(Some(7)).is_none(), "at the maximum");
        assert!(slots.take(Some(8)).is_some(), "other keys keep theirs");
        let _uncounted = slots.take(None).expect("no key, no cap");
        assert_eq!(slots.in_progress(), 3);
        drop(a);
        assert!(
            slots.take(Some(7)).is_some(),
            "a freed place is taken again"
        );
    }
}
