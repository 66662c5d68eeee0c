//! Any datagram (or TCP message) to the helper's DNS server: the handler must never panic, and
//! whatever it sends back is a well-formed response to that query (same id, QR set, never RA),
//! no larger than UDP allows, carrying records only for names in our zones. Queries are never
//! recursed into anything: an answer's owner is always ours.
#![no_main]

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::LazyLock;

use dockroute_helper::dns::answer::{answer, Transport, MAX_UDP};
use dockroute_helper::dns::names::{is_below, validate};
use dockroute_helper::dns::table::NameTable;
use hickory_proto::op::{Message, MessageType};
use libfuzzer_sys::fuzz_target;

static TABLE: LazyLock<NameTable> = LazyLock::new(|| {
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let names = BTreeMap::from([
        ("web".to_string(), vec![ip("172.18.0.2"), ip("fd00::2")]),
        ("api.shop".to_string(), vec![ip("172.18.0.3")]),
        ("crowd".to_string(), (1..=60).map(|i| ip(&format!("172.18.1.{i}"))).collect()),
    ]);
    let domains = BTreeMap::from([
        ("shop.test".to_string(), vec![ip("172.18.0.3")]),
        ("*.shop.test".to_string(), vec![ip("fd00::4")]),
    ]);
    NameTable::new("docker", &validate(&names, &domains, "docker").unwrap(), 1)
});

fuzz_target!(|data: &[u8]| {
    for transport in [Transport::Udp, Transport::Tcp] {
        let reply = answer(data, &TABLE, transport);
        let Some(bytes) = reply.bytes else { continue };
        let m = Message::from_vec(&bytes).expect("our reply parses");
        assert_eq!(&bytes[..2], &data[..2], "the query's id");
        assert_eq!(m.metadata.message_type, MessageType::Response);
        assert!(!m.metadata.recursion_available, "never a recursive resolver");
        if transport == Transport::Udp {
            assert!(bytes.len() <= MAX_UDP, "{} bytes over UDP", bytes.len());
        }
        for record in m.answers.iter().chain(&m.authorities) {
            let owner = record.name.to_lowercase().to_ascii();
            let owner = owner.trim_end_matches('.');
            assert!(TABLE.zones().iter().any(|z| is_below(owner, z)), "an answer for {owner}, not ours");
        }
    }
});
