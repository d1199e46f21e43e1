//! softphone-bridge: a tray daemon that owns the agent's phone line and lets CRM pages drive
//! it through a secure localhost WebSocket. See `ARCHITECTURE.md` for the map.

pub mod api;
pub mod audio;
pub mod blacklist;
pub mod certs;
pub mod cli;
pub mod client;
pub mod config;
pub mod demo;
pub mod http;
pub mod ids;
pub mod leads;
pub mod line;
pub mod logging;
pub mod media;
pub mod notify;
pub mod origins;
pub mod phone;
pub mod private_files;
pub mod protocol;
pub mod rate;
pub mod run;
pub mod secrets;
pub mod store;
pub mod timer;
pub mod tray;
