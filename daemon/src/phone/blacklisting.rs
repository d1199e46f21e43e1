//! The phone's blacklist actions (`blacklist_add`, `blacklist_remove`, `blacklist_list`) and the
//! check every dialled number goes through. The list itself is [`crate::blacklist`]; the driver
//! keeps the agent's part in the store after each change.

use std::sync::Arc;

use serde_json::{Value, json};
use sip_core::Uri;

use super::{Phone, PhoneError};
use crate::blacklist::{MAX_AGENT_NUMBERS, Number};
use crate::line::LineCommand;
use crate::protocol::BlacklistNumbers;

/// The most numbers one action takes.
pub const MAX_PER_ACTION: usize = 1_000;

impl Phone {
    /// Refuses `target` (about to be dialled or transferred to) when it is listed.
    pub(super) fn check_blacklist(&self, target: &Uri, shown: &str) -> Result<(), PhoneError> {
        let user = target.user.as_deref().unwrap_or(&target.host);
        if self.blacklist.blocks(user) {
            return Err(PhoneError::Blacklisted(format!(
                "{shown} is on the blacklist; no call was placed"
            )));
        }
        Ok(())
    }

    /// Every number checked before any is added: one bad number adds none.
    pub(super) fn blacklist_add(
        &mut self,
        request: &BlacklistNumbers,
    ) -> Result<Value, PhoneError> {
        let numbers = parse_all(request)?;
        let new = numbers
            .iter()
            .filter(|n| !self.blacklist.agent_has(n) && !self.blacklist.machine_has(n))
            .count();
        if self.blacklist.agent_len() + new > MAX_AGENT_NUMBERS {
            return Err(PhoneError::InvalidParams(format!(
                "the blacklist holds at most {MAX_AGENT_NUMBERS} numbers; it has {}",
                self.blacklist.agent_len()
            )));
        }
        let (mut added, mut already) = (Vec::new(), Vec::new());
        for number in numbers {
            let text = number.text();
            if self.blacklist.machine_has(&number) || !self.blacklist.add(number) {
                already.push(text);
            } else {
                added.push(text);
            }
        }
        self.blacklist_changed = true;
        self.share_blacklist();
        Ok(json!({ "added": added, "alreadyListed": already }))
    }

    /// Refused as a whole when any number is on IT's list: the agent cannot remove those.
    pub(super) fn blacklist_remove(
        &mut self,
        request: &BlacklistNumbers,
    ) -> Result<Value, PhoneError> {
        let numbers = parse_all(request)?;
        if let Some(locked) = numbers.iter().find(|n| self.blacklist.machine_has(n)) {
            return Err(PhoneError::Forbidden(format!(
                "{} is on IT's machine-wide blacklist, which only IT can change; nothing was removed",
                locked.text()
            )));
        }
        let (mut removed, mut not_listed) = (Vec::new(), Vec::new());
        for number in numbers {
            if self.blacklist.remove(&number) {
                removed.push(number.text());
            } else {
                not_listed.push(number.text());
            }
        }
        self.blacklist_changed = true;
        self.share_blacklist();
        Ok(json!({ "removed": removed, "notListed": not_listed }))
    }

    pub(super) fn blacklist_list(&self) -> Value {
        json!({
            "numbers": self.blacklist.agent_numbers(),
            "machineCount": self.blacklist.machine_len(),
        })
    }

    /// The agent's numbers (the store gets them through `take_changed_blacklist`).
    #[cfg(test)]
    pub fn agent_blacklist(&self) -> Vec<String> {
        self.blacklist.agent_numbers()
    }

    /// The line checks a far end's REFER target against the same list.
    pub(super) fn share_blacklist(&mut self) {
        self.commands
            .push_back(LineCommand::Blacklist(Arc::new(self.blacklist.clone())));
    }
}

fn parse_all(request: &BlacklistNumbers) -> Result<Vec<Number>, PhoneError> {
    let all = request.all();
    if all.is_empty() || all.len() > MAX_PER_ACTION {
        return Err(PhoneError::InvalidParams(format!(
            "give `number`, or `numbers` with 1 to {MAX_PER_ACTION} numbers"
        )));
    }
    all.iter()
        .enumerate()
        .map(|(index, text)| {
            Number::parse(text).map_err(|e| {
                let which = if request.number.is_some() && index == 0 {
                    "`number`".to_owned()
                } else {
                    let offset = usize::from(request.number.is_some());
                    format!("`numbers[{}]`", index - offset)
                };
                PhoneError::InvalidNumber(format!("{which}: {e}; nothing was changed"))
            })
        })
        .collect()
}
