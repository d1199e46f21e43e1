//! Finding the server by DNS (RFC 3263) against a real DNS server: dnsmasq on loopback serves
//! `_sip._udp.pbx.lab` → `kamailio.pbx.lab:PORT` → 127.0.0.1, and the line registers with the
//! Kamailio behind it, configured only with `server = "pbx.lab"`.

mod common;
mod dnsmasq;
mod lab;

use common::{CRM, Daemon};
use dnsmasq::Dnsmasq;
use lab::Kamailio;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registers_with_the_server_found_by_srv() {
    let kamailio = Kamailio::start("MD5");
    let dns = Dnsmasq::start(&[
        // A decoy at a lower preference (higher priority number) that nothing listens on.
        format!(
            "--srv-host=_sip._udp.pbx.lab,kamailio.pbx.lab,{},10,50",
            kamailio.port
        ),
        "--srv-host=_sip._udp.pbx.lab,decoy.pbx.lab,9,20,50".to_owned(),
        "--host-record=kamailio.pbx.lab,127.0.0.1".to_owned(),
        "--host-record=decoy.pbx.lab,127.0.0.2".to_owned(),
    ]);
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"pbx.lab\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\ndns_server = \"127.0.0.1:{}\"\n",
        dns.port
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    assert_eq!(
        kamailio.contacts("1001").len(),
        1,
        "registered with the Kamailio SRV pointed at"
    );
    assert!(
        daemon.log().contains("SIP server found by SRV"),
        "{}",
        daemon.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_name_without_srv_falls_back_to_its_address_and_a_bad_dns_server_is_a_config_error() {
    let kamailio = Kamailio::start("MD5");
    let dns = Dnsmasq::start(&["--host-record=pbx.lab,127.0.0.1".to_owned()]);
    let daemon = Daemon::start(&format!(
        "[account]\nserver = \"pbx.lab:{}\"\ntransport = \"udp\"\nusername = \"1001\"\npassword = \"secret1001\"\ndns_server = \"127.0.0.1:{}\"\n",
        kamailio.port, dns.port
    ));
    let mut page = daemon.connect(CRM).await;
    page.registered().await;
    assert_eq!(kamailio.contacts("1001").len(), 1);
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.toml");
    std::fs::write(
        &config,
        "[account]\nserver = \"pbx.lab\"\nusername = \"1001\"\ndns_server = \"localhost\"\n",
    )
    .expect("write");
    let output = daemon.cli(&["config", "check", &config.to_string_lossy()]);
    let text = String::from_utf8_lossy(&output.stderr).to_string()
        + &String::from_utf8_lossy(&output.stdout);
    assert!(
        !output.status.success() && text.contains("dns_server"),
        "{text}"
    );
}
