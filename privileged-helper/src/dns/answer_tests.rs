use std::collections::BTreeMap;
use std::net::IpAddr;

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use super::*;
use crate::dns::names::validate;

fn table() -> NameTable {
    let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
    let names = BTreeMap::from([
        ("web".to_string(), vec![ip("172.18.0.2"), ip("fd00::2")]),
        ("v4only".to_string(), vec![ip("172.18.0.3")]),
        ("api.shop".to_string(), vec![ip("172.18.0.4")]),
        // A name many containers claim: more A records than fit in 512 bytes.
        ("crowd".to_string(), (1..=60).map(|i| ip(&format!("172.18.1.{i}"))).collect()),
    ]);
    let domains = BTreeMap::from([("*.shop.test".to_string(), vec![ip("172.18.0.5")])]);
    NameTable::new("docker", &validate(&names, &domains, "docker").unwrap(), 42)
}

fn query(name: &str, qtype: RecordType) -> Message {
    let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    m
}

fn with_edns(mut m: Message, size: u16, version: u8) -> Message {
    let mut e = Edns::new();
    e.set_max_payload(size);
    e.set_version(version);
    m.set_edns(e);
    m
}

/// Sends `m` over `t` and reads the reply back.
fn ask_over(m: &Message, t: Transport) -> (Message, Outcome, usize) {
    let reply = answer(&m.to_vec().unwrap(), &table(), t);
    let bytes = reply.bytes.expect("a reply");
    (Message::from_vec(&bytes).unwrap(), reply.outcome, bytes.len())
}

fn ask(m: &Message) -> (Message, Outcome) {
    let (r, o, _) = ask_over(m, Transport::Udp);
    (r, o)
}

fn addresses(r: &Message) -> Vec<String> {
    r.answers
        .iter()
        .map(|rec| match &rec.data {
            RData::A(a) => a.0.to_string(),
            RData::AAAA(a) => a.0.to_string(),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

/// The negative-answer SOA: our zone, minimum = the short TTL.
fn soa_zone(r: &Message) -> String {
    assert_eq!(r.authorities.len(), 1, "{r}");
    match &r.authorities[0].data {
        RData::SOA(soa) => {
            assert_eq!((soa.minimum, soa.serial, r.authorities[0].ttl), (TTL, 42, TTL));
            r.authorities[0].name.to_ascii()
        }
        other => panic!("not a SOA: {other:?}"),
    }
}

#[test]
fn a_and_aaaa_come_from_the_table_authoritatively_with_the_short_ttl() {
    let (r, outcome) = ask(&query("web.docker.", RecordType::A));
    assert_eq!((outcome, r.metadata.response_code), (Outcome::Answered, ResponseCode::NoError));
    assert_eq!(addresses(&r), ["172.18.0.2"]);
    assert!(r.metadata.authoritative && r.metadata.recursion_desired && !r.metadata.recursion_available);
    assert_eq!((r.metadata.id, r.metadata.message_type), (0x1234, MessageType::Response));
    assert_eq!((r.answers[0].ttl, r.queries.len()), (TTL, 1));
    let (r, _) = ask(&query("web.docker.", RecordType::AAAA));
    assert_eq!(addresses(&r), ["fd00::2"]);
    assert!(r.authorities.is_empty());
    let (r, _) = ask(&query("api.shop.docker.", RecordType::A));
    assert_eq!(addresses(&r), ["172.18.0.4"]);
}

#[test]
fn the_name_is_answered_as_asked_whatever_its_case() {
    let (r, _) = ask(&query("WeB.DoCkEr.", RecordType::A));
    assert_eq!(addresses(&r), ["172.18.0.2"]);
    assert_eq!(r.answers[0].name.to_ascii(), "WeB.DoCkEr.", "owner keeps the query's case (0x20)");
    assert_eq!(r.queries[0].name().to_ascii(), "WeB.DoCkEr.");
}

#[test]
fn a_wildcard_answers_with_the_asked_name() {
    let (r, _) = ask(&query("www.shop.test.", RecordType::A));
    assert_eq!(addresses(&r), ["172.18.0.5"]);
    assert_eq!(r.answers[0].name.to_ascii(), "www.shop.test.");
}

#[test]
fn no_address_of_the_family_or_another_type_is_nodata_with_the_soa() {
    for (name, qtype) in [
        ("v4only.docker.", RecordType::AAAA),
        ("web.docker.", RecordType::MX),
        ("web.docker.", RecordType::TXT),
        ("web.docker.", RecordType::ANY),
        ("web.docker.", RecordType::NS),
        ("shop.docker.", RecordType::A), // a parent of api.shop: exists, no address
        ("docker.", RecordType::A),      // the apex
    ] {
        let (r, outcome) = ask(&query(name, qtype));
        assert_eq!((outcome, r.metadata.response_code), (Outcome::Answered, ResponseCode::NoError), "{name} {qtype}");
        assert!(r.answers.is_empty() && r.metadata.authoritative, "{name} {qtype}: {r}");
        assert_eq!(soa_zone(&r), "docker.", "{name} {qtype}");
    }
}

#[test]
fn the_soa_is_answered_at_a_zone_apex_only() {
    let (r, outcome) = ask(&query("docker.", RecordType::SOA));
    assert_eq!((outcome, r.answers.len(), r.authorities.len()), (Outcome::Answered, 1, 0));
    assert_eq!(r.answers[0].record_type(), RecordType::SOA);
    let (r, _) = ask(&query("web.docker.", RecordType::SOA));
    assert!(r.answers.is_empty());
    assert_eq!(soa_zone(&r), "docker.");
    let (r, _) = ask(&query("shop.test.", RecordType::SOA));
    assert_eq!(r.answers[0].name.to_ascii(), "shop.test.", "a label domain's zone");
}

#[test]
fn an_unknown_name_in_our_zone_is_nxdomain_with_the_soa() {
    for (name, zone) in [("nothere.docker.", "docker."), ("x.web.docker.", "docker."), ("a.b.docker.", "docker.")] {
        let (r, outcome) = ask(&query(name, RecordType::A));
        assert_eq!((outcome, r.metadata.response_code), (Outcome::NxDomain, ResponseCode::NXDomain), "{name}");
        assert!(r.answers.is_empty() && r.metadata.authoritative);
        assert_eq!(soa_zone(&r), zone);
    }
}

#[test]
fn everything_outside_our_zones_is_refused_never_recursed() {
    for (name, qtype) in [
        ("example.com.", RecordType::A),
        ("docker.com.", RecordType::A),
        ("test.", RecordType::NS),
        (".", RecordType::NS),
        ("localhost.", RecordType::A),
    ] {
        let (r, outcome) = ask(&query(name, qtype));
        assert_eq!((outcome, r.metadata.response_code), (Outcome::Refused, ResponseCode::Refused), "{name}");
        assert!(r.answers.is_empty() && r.authorities.is_empty(), "{name}: {r}");
        assert!(!r.metadata.authoritative && !r.metadata.recursion_available, "{name}");
        assert!(r.metadata.recursion_desired, "RD is copied, not honoured");
    }
}

#[test]
fn zone_transfers_other_classes_and_other_opcodes_are_refused() {
    let (r, outcome) = ask(&query("docker.", RecordType::AXFR));
    assert_eq!((outcome, r.metadata.response_code), (Outcome::Refused, ResponseCode::Refused));
    let mut chaos = query("web.docker.", RecordType::A);
    chaos.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(ask(&chaos).1, Outcome::Refused);
    for op in [OpCode::Update, OpCode::Notify, OpCode::Status] {
        let mut m = query("web.docker.", RecordType::A);
        m.metadata.op_code = op;
        let (r, outcome) = ask(&m);
        assert_eq!(
            (outcome, r.metadata.response_code, r.metadata.op_code),
            (Outcome::Refused, ResponseCode::NotImp, op)
        );
    }
}

#[test]
fn unreadable_queries_are_formerr_when_the_header_reads_and_dropped_otherwise() {
    let t = table();
    let good = query("web.docker.", RecordType::A).to_vec().unwrap();
    // Cut inside the question: the header says one question, the bytes end.
    let reply = answer(&good[..good.len() - 3], &t, Transport::Udp);
    assert_eq!(reply.outcome, Outcome::Malformed);
    let r = Message::from_vec(&reply.bytes.unwrap()).unwrap();
    assert_eq!((r.metadata.id, r.metadata.response_code), (0x1234, ResponseCode::FormErr));
    assert!(r.metadata.recursion_desired && r.queries.is_empty());
    // Two questions: readable, but not a query we answer.
    let mut two = query("web.docker.", RecordType::A);
    two.add_query(Query::query(Name::from_ascii("v4only.docker.").unwrap(), RecordType::A));
    let (r, outcome) = ask(&two);
    assert_eq!((outcome, r.metadata.response_code), (Outcome::Malformed, ResponseCode::FormErr));
    let (r, outcome) = ask(&Message::new(7, MessageType::Query, OpCode::Query));
    assert_eq!((outcome, r.metadata.response_code), (Outcome::Malformed, ResponseCode::FormErr), "no question");
    // Too short for a header, or a response (never answered: no loops): dropped.
    for bytes in [&b""[..], &good[..11], &b"\x12\x34\x81\x80garbage-garbage"[..]] {
        assert_eq!(answer(bytes, &t, Transport::Udp), Reply { bytes: None, outcome: Outcome::Malformed }, "{bytes:?}");
    }
    let mut response = query("web.docker.", RecordType::A);
    response.metadata.message_type = MessageType::Response;
    assert_eq!(answer(&response.to_vec().unwrap(), &t, Transport::Udp).bytes, None);
}

#[test]
fn edns_is_answered_with_edns_and_an_unknown_version_is_badvers() {
    let (r, _) = ask(&query("web.docker.", RecordType::A));
    assert!(r.edns.is_none(), "no OPT without one in the query");
    let (r, outcome) = ask(&with_edns(query("web.docker.", RecordType::A), 1232, 0));
    assert_eq!((outcome, addresses(&r)), (Outcome::Answered, vec!["172.18.0.2".to_string()]));
    let edns = r.edns.as_ref().expect("OPT in the reply");
    assert_eq!((edns.max_payload(), edns.version()), (ADVERTISED_UDP, 0));
    let (r, outcome) = ask(&with_edns(query("web.docker.", RecordType::A), 1232, 1));
    // 16 on the wire, which hickory reads back as BADSIG (the two share the number).
    assert_eq!((outcome, u16::from(r.metadata.response_code)), (Outcome::Malformed, u16::from(ResponseCode::BADVERS)));
    assert!(r.answers.is_empty());
}

#[test]
fn a_reply_too_big_for_the_clients_udp_size_is_truncated_and_complete_over_tcp() {
    let crowd = query("crowd.docker.", RecordType::A);
    let (r, outcome, len) = ask_over(&crowd, Transport::Udp);
    assert!(r.metadata.truncation && r.answers.is_empty(), "60 A records do not fit in 512 bytes");
    assert_eq!((outcome, r.queries.len()), (Outcome::Answered, 1));
    assert!(len <= 512);
    let (r, _, len) = ask_over(&with_edns(crowd.clone(), 4096, 0), Transport::Udp);
    assert!(!r.metadata.truncation && r.answers.len() == 60 && len > 512, "EDNS: the client's size is honoured");
    let (r, _, len) = ask_over(&with_edns(crowd.clone(), 600, 0), Transport::Udp);
    assert!(r.metadata.truncation && r.edns.is_some() && len <= 600, "still too small: TC, OPT kept");
    let (r, _, _) = ask_over(&crowd, Transport::Tcp);
    assert!(!r.metadata.truncation && r.answers.len() == 60, "TCP carries it all");
    let (r, _, _) = ask_over(&with_edns(query("web.docker.", RecordType::A), 100, 0), Transport::Udp);
    assert!(!r.metadata.truncation, "an advertised size below 512 counts as 512");
}
