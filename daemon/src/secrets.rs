//! Secrets the daemon must keep across a restart — today the password and auth key of an account a
//! page provisioned — held in the OS keyring, never in a file.
//!
//! On Linux that is the kernel's keyring (keyutils): the key is linked to the session keyring and
//! the user's persistent keyring, readable by this user's processes (any of them can reach the
//! persistent keyring) and by root, never by other users, and never written to disk. It outlives a crash or a restart of the daemon within the login session
//! (and, through the persistent keyring, a logout for a few days) but not a reboot: then the page
//! provisions again, as it does at every agent login. Where no keyring can be reached (another OS
//! for now, or a sandbox forbidding `keyctl`) [`Vault::os`] says why and nothing is kept.
//!
//! Credentials — and so the session keyring — are per thread in Linux, and a thread without a
//! session keyring gets one on first use: [`prepare_process`] settles it on the main thread
//! before any other thread starts, so every thread of the daemon sees the same keys.
//!
//! Each data folder names its secrets by its store's instance id, so two daemons of one user on
//! two data folders never read each other's.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Every key this daemon makes is `keyring:softphone-bridge@<instance>/<name>`.
pub const SERVICE: &str = "softphone-bridge";

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("no OS keyring to keep secrets in: {0}")]
    NoKeyring(String),
    #[error("the OS keyring refused `{name}`: {reason}")]
    Refused { name: String, reason: String },
}

/// Named secrets of one data folder.
#[derive(Clone)]
pub struct Vault {
    instance: String,
    inner: Inner,
}

#[derive(Clone)]
enum Inner {
    #[cfg(target_os = "linux")]
    Keyring(Arc<keyring_core::CredentialStore>),
    /// For tests of the code above: the same contract in memory.
    Memory(Arc<Mutex<HashMap<String, String>>>),
}

/// Gives the process its session keyring (the login's, or a new one) with the user's persistent
/// keyring linked in. Call on the main thread before starting others; failures surface later,
/// in [`Vault::os`].
pub fn prepare_process() {
    #[cfg(target_os = "linux")]
    {
        use linux_keyutils::{KeyRing, KeyRingIdentifier};
        if KeyRing::from_special_id(KeyRingIdentifier::Session, true).is_ok() {
            let _ = KeyRing::get_persistent(KeyRingIdentifier::Session);
        }
    }
}

impl Vault {
    /// The OS keyring, for the data folder whose store has `instance`.
    pub fn os(instance: &str) -> Result<Self, VaultError> {
        #[cfg(target_os = "linux")]
        {
            use linux_keyutils::{KeyRing, KeyRingIdentifier};
            // Without the persistent keyring, keys would end with this process's session.
            KeyRing::get_persistent(KeyRingIdentifier::Session).map_err(|e| {
                VaultError::NoKeyring(format!(
                    "no persistent kernel keyring for this user ({e:?})"
                ))
            })?;
            let store = linux_keyutils_keyring_store::Store::new()
                .map_err(|e| VaultError::NoKeyring(e.to_string()))?;
            let vault = Self {
                instance: instance.to_owned(),
                inner: Inner::Keyring(store),
            };
            // A sandbox may forbid keyctl: find out now, not when a page provisions.
            vault.get("probe")?;
            Ok(vault)
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = instance;
            Err(VaultError::NoKeyring(
                "this build keeps secrets only in the Linux kernel keyring".into(),
            ))
        }
    }

    /// A vault in memory (tests).
    pub fn in_memory(instance: &str) -> Self {
        Self {
            instance: instance.to_owned(),
            inner: Inner::Memory(Arc::default()),
        }
    }

    pub fn put(&self, name: &str, secret: &str) -> Result<(), VaultError> {
        match &self.inner {
            #[cfg(target_os = "linux")]
            Inner::Keyring(store) => self
                .entry(store, name)?
                .set_password(secret)
                .map_err(|e| self.refused(name, &e)),
            Inner::Memory(map) => {
                lock(map).insert(self.user(name), secret.to_owned());
                Ok(())
            }
        }
    }

    /// The secret, or `None` when there is none (never kept, removed, or cleared by a reboot).
    pub fn get(&self, name: &str) -> Result<Option<String>, VaultError> {
        match &self.inner {
            #[cfg(target_os = "linux")]
            Inner::Keyring(store) => match self.entry(store, name)?.get_password() {
                Ok(secret) => Ok(Some(secret)),
                Err(keyring_core::Error::NoEntry) => Ok(None),
                Err(e) => Err(self.refused(name, &e)),
            },
            Inner::Memory(map) => Ok(lock(map).get(&self.user(name)).cloned()),
        }
    }

    /// Removes the secret; one that is not there is already removed.
    pub fn remove(&self, name: &str) -> Result<(), VaultError> {
        match &self.inner {
            #[cfg(target_os = "linux")]
            Inner::Keyring(store) => match self.entry(store, name)?.delete_credential() {
                Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
                Err(e) => Err(self.refused(name, &e)),
            },
            Inner::Memory(map) => {
                lock(map).remove(&self.user(name));
                Ok(())
            }
        }
    }

    fn user(&self, name: &str) -> String {
        format!("{}/{name}", self.instance)
    }

    #[cfg(target_os = "linux")]
    fn entry(
        &self,
        store: &Arc<keyring_core::CredentialStore>,
        name: &str,
    ) -> Result<keyring_core::Entry, VaultError> {
        keyring_core::Entry::new_in_store(store, SERVICE, &self.user(name))
            .map_err(|e| self.refused(name, &e))
    }

    /// The error without the secret: keyring errors name the entry, never its value.
    #[cfg(target_os = "linux")]
    fn refused(&self, name: &str, error: &keyring_core::Error) -> VaultError {
        VaultError::Refused {
            name: name.to_owned(),
            reason: error.to_string(),
        }
    }
}

fn lock(
    map: &Mutex<HashMap<String, String>>,
) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
    map.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kernel_keyring_keeps_a_secret_per_data_folder_until_removed() {
        let instance = format!("test-{}", std::process::id());
        // (A sandbox forbidding keyctl fails here: the daemon would keep no provisioning there.)
        let vault = Vault::os(&instance).expect("the kernel keyring");
        let other = Vault::os(&format!("{instance}-other")).expect("same keyring");
        vault.put("password", "s3cret").expect("put");
        vault.put("auth_key", "k").expect("put a second");
        assert_eq!(vault.get("auth_key").expect("get").as_deref(), Some("k"));
        vault.remove("auth_key").expect("remove");
        assert_eq!(
            vault.get("password").expect("get").as_deref(),
            Some("s3cret")
        );
        assert_eq!(
            other.get("password").expect("get"),
            None,
            "another data folder's"
        );
        vault.put("password", "changed").expect("replace");
        assert_eq!(
            vault.get("password").expect("get").as_deref(),
            Some("changed")
        );
        vault.remove("password").expect("remove");
        assert_eq!(vault.get("password").expect("get"), None);
        vault.remove("password").expect("removing twice is fine");
    }

    #[test]
    fn the_memory_vault_keeps_the_same_contract() {
        let vault = Vault::in_memory("i");
        vault.put("auth_key", "k").expect("put");
        assert_eq!(vault.get("auth_key").expect("get").as_deref(), Some("k"));
        vault.remove("auth_key").expect("remove");
        assert_eq!(vault.get("auth_key").expect("get"), None);
    }
}
