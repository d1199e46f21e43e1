//! dnsmasq on loopback as the lab's DNS server: only the records a test gives it.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::common::eventually;
use crate::lab::free_port;

pub struct Dnsmasq {
    child: Child,
    pub port: u16,
}

impl Dnsmasq {
    pub fn start(records: &[String]) -> Self {
        let port = free_port();
        let mut command = Command::new("dnsmasq");
        // Foreground, loopback only, no upstream, no /etc/hosts: only what the test gives it.
        command.args([
            "--keep-in-foreground",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--bind-interfaces",
            "--listen-address=127.0.0.1",
            "--user=root",
            "--pid-file",
        ]);
        command.arg(format!("--port={port}"));
        command.args(records);
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (package dnsmasq-base) is installed");
        // Ready when it answers on its port.
        eventually("dnsmasq to listen", Duration::from_secs(5), || {
            let probe = std::net::UdpSocket::bind("127.0.0.1:0").ok()?;
            probe
                .set_read_timeout(Some(Duration::from_millis(200)))
                .ok()?;
            let query =
                sip_core::dns::query(7, "kamailio.pbx.lab", sip_core::dns::RecordType::A).ok()?;
            probe.send_to(&query, ("127.0.0.1", port)).ok()?;
            let mut buffer = [0u8; 512];
            probe.recv(&mut buffer).ok().map(|_| ())
        });
        Self { child, port }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
