//! The account a page provisioned, kept across a restart: its parameters without the secrets in
//! the store, the secrets (`password`, `auth_key`) in the OS keyring. Both or neither: a
//! parameter set whose secrets are gone (a reboot clears the kernel keyring) is forgotten, and
//! the page provisions again as it does at every agent login.

use serde_json::Value;

use super::Journal;
use crate::secrets::{Vault, VaultError};
use crate::store::StoreError;

/// The seed's parameters that are secrets.
const SECRETS: [&str; 2] = ["password", "auth_key"];

/// Why a provisioned account is not kept, or not restored.
#[derive(Debug, thiserror::Error)]
pub enum Unkept {
    #[error("there is no store this run")]
    NoStore,
    #[error("{0}")]
    NoKeyring(String),
    #[error(transparent)]
    Keyring(#[from] VaultError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("its `{0}` is no longer in the OS keyring (a reboot clears the kernel keyring)")]
    SecretGone(&'static str),
    #[error("its `{0}` is not a string")]
    NotAString(&'static str),
    #[error("what the store holds of it is not in the form this version keeps")]
    Unreadable,
}

impl Journal {
    /// Where secrets go (or why there is nowhere): set once at start by the run.
    pub fn set_vault(&mut self, vault: Result<Vault, VaultError>) {
        self.vault = vault.map_err(|e| e.to_string());
    }

    /// Keeps `params` (already accepted by the phone), and the origin that sent them, for the
    /// next start.
    pub fn keep_provisioning(&mut self, params: &Value, origin: &str) -> Result<(), Unkept> {
        let vault = self.vault()?;
        if self.store.is_none() {
            return Err(Unkept::NoStore);
        }
        // The old account goes first: a new secret must never be paired with an old server.
        if let Some(store) = &mut self.store {
            store.keep_state("provisioning", None)?;
        }
        let mut public = params.clone();
        for name in SECRETS {
            let secret = public
                .as_object_mut()
                .and_then(|map| map.remove(name))
                .and_then(|v| v.as_str().map(str::to_owned))
                .ok_or(Unkept::NotAString(name))?;
            vault.put(name, &secret)?;
        }
        let kept = match &mut self.store {
            Some(store) => store
                .keep_state(
                    "provisioning",
                    Some(&serde_json::json!({ "origin": origin, "params": public })),
                )
                .map_err(Unkept::from),
            None => Err(Unkept::NoStore),
        };
        if kept.is_err() {
            // Secrets without their account would only linger.
            remove_secrets(&vault);
        }
        kept
    }

    /// Forgets the kept account and its secrets (logout, or an account that cannot be restored).
    pub fn forget_provisioning(&mut self) {
        if let Ok(vault) = self.vault() {
            remove_secrets(&vault);
        }
        if let Some(store) = &mut self.store
            && let Err(e) = store.keep_state("provisioning", None)
        {
            tracing::warn!("the provisioned account could not be forgotten: {e}");
        }
    }

    /// The parameters kept by the last run, secrets put back, and the origin that sent them;
    /// `Ok(None)` when none were kept. An account that cannot be put back together is forgotten.
    pub fn recall_provisioning(
        &mut self,
        saved: Option<Value>,
    ) -> Result<Option<(Value, String)>, Unkept> {
        let Some(saved) = saved else {
            return Ok(None);
        };
        let origin = saved["origin"].as_str().unwrap_or_default().to_owned();
        let mut params = saved["params"].clone();
        let recalled = self.vault().and_then(|vault| {
            if origin.is_empty() || !params.is_object() {
                return Err(Unkept::Unreadable);
            }
            for name in SECRETS {
                let secret = vault.get(name)?.ok_or(Unkept::SecretGone(name))?;
                if let Some(map) = params.as_object_mut() {
                    map.insert(name.to_owned(), Value::String(secret));
                }
            }
            Ok(params)
        });
        if recalled.is_err() {
            self.forget_provisioning();
        }
        recalled.map(|params| Some((params, origin)))
    }

    fn vault(&self) -> Result<Vault, Unkept> {
        self.vault.clone().map_err(Unkept::NoKeyring)
    }
}

fn remove_secrets(vault: &Vault) {
    for name in SECRETS {
        if let Err(e) = vault.remove(name) {
            tracing::warn!("{e}");
        }
    }
}
