//! The DNS server's core, without sockets: one query's bytes and the name table in, the reply's
//! bytes (or nothing) and what kind of answer it was out. hickory-proto parses and writes the
//! messages; every decision is here.
//!
//! Authoritative for our zones only (AA set): A/AAAA from the table, NODATA (with the zone's
//! SOA) for a name without that family or for any other type, NXDOMAIN (with the SOA, whose
//! minimum is the short TTL) for a name that does not exist. Everything else is REFUSED: no
//! recursion, ever, so the server cannot be used as an open resolver. A query that cannot be
//! read is dropped, or answered FORMERR when its header can be; a response is never answered
//! (no loops). EDNS: the client's UDP size is honoured (512 without EDNS); a reply that does
//! not fit is cut to its question with TC set, so the client asks again over TCP.

use hickory_proto::op::{Edns, Header, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, SOA};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};

use super::table::{Lookup, NameTable};

/// Seconds a client may cache an answer (and a negative answer: the SOA's minimum). Short, so
/// a removed container's name is gone from caches within moments.
pub const TTL: u32 = 5;
/// The UDP size we advertise (the DNS flag day's 1232: no fragmentation on any path).
pub const ADVERTISED_UDP: u16 = 1232;
/// The largest UDP reply we send, whatever a client advertises (and our receive buffer).
pub const MAX_UDP: usize = 4096;
const HEADER_LEN: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    /// Length-prefixed: no size limit below 64 KiB, never truncated.
    Tcp,
}

/// What one query came to, for the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// NOERROR: addresses, the SOA, or NODATA.
    Answered,
    NxDomain,
    /// REFUSED (not our zone, another class, a zone transfer) or NOTIMP (another opcode).
    Refused,
    /// Dropped, or FORMERR / BADVERS.
    Malformed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// None: send nothing.
    pub bytes: Option<Vec<u8>>,
    pub outcome: Outcome,
}

impl Reply {
    fn dropped() -> Reply {
        Reply { bytes: None, outcome: Outcome::Malformed }
    }
}

/// Answers one query (`query`: one UDP payload, or one TCP message without its length).
pub fn answer(query: &[u8], table: &NameTable, transport: Transport) -> Reply {
    let request = match Message::from_vec(query) {
        Ok(m) => m,
        Err(_) => return form_error(query),
    };
    if request.metadata.message_type == MessageType::Response {
        return Reply::dropped();
    }
    let mut response = Message::new(request.metadata.id, MessageType::Response, request.metadata.op_code);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.checking_disabled = request.metadata.checking_disabled;
    response.add_queries(request.queries.iter().cloned());
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(ADVERTISED_UDP);
        response.set_edns(edns);
    }
    let outcome = if request.metadata.op_code != OpCode::Query {
        response.metadata.response_code = ResponseCode::NotImp;
        Outcome::Refused
    } else if request.queries.len() != 1 {
        response.metadata.response_code = ResponseCode::FormErr;
        Outcome::Malformed
    } else if request.edns.as_ref().is_some_and(|e| e.version() > 0) {
        // RFC 6891: we speak EDNS version 0 only.
        response.metadata.response_code = ResponseCode::BADVERS;
        Outcome::Malformed
    } else {
        resolve(&request.queries[0], table, &mut response)
    };
    let limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => usize::from(request.max_payload()).min(MAX_UDP),
    };
    let bytes = match response.to_vec() {
        Ok(b) if b.len() <= limit => b,
        // Too big for this client over UDP: the question alone, TC set, so it asks over TCP.
        Ok(_) => match response.truncate().to_vec() {
            Ok(b) => b,
            Err(_) => return Reply::dropped(),
        },
        Err(_) => return Reply::dropped(),
    };
    Reply { bytes: Some(bytes), outcome }
}

/// Fills in the answer to `q` and says what it was.
fn resolve(q: &Query, table: &NameTable, response: &mut Message) -> Outcome {
    let refuse = |response: &mut Message| {
        response.metadata.response_code = ResponseCode::Refused;
        Outcome::Refused
    };
    if q.query_class() != DNSClass::IN {
        return refuse(response);
    }
    let labels: Vec<String> = q.name().iter().map(|l| String::from_utf8_lossy(l).to_ascii_lowercase()).collect();
    let (zone, addrs, apex) = match table.lookup(&labels) {
        Lookup::NotOurs => return refuse(response),
        Lookup::Found { zone, addrs } => (zone, Some(addrs), labels.join(".") == zone),
        Lookup::Empty { zone, apex } => (zone, None, apex),
        Lookup::NxDomain { zone } => {
            response.metadata.authoritative = true;
            response.metadata.response_code = ResponseCode::NXDomain;
            if let Some(soa) = soa(zone, table.serial()) {
                response.add_authority(soa);
            }
            return Outcome::NxDomain;
        }
    };
    if matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR) {
        return refuse(response);
    }
    response.metadata.authoritative = true;
    // The owner is the name as asked: its case too (resolvers that randomise case check it).
    let owner = q.name().clone();
    match (q.query_type(), addrs) {
        (RecordType::A, Some(a)) => {
            response.add_answers(a.v4.iter().map(|ip| Record::from_rdata(owner.clone(), TTL, RData::A(A(*ip)))));
        }
        (RecordType::AAAA, Some(a)) => {
            response.add_answers(a.v6.iter().map(|ip| Record::from_rdata(owner.clone(), TTL, RData::AAAA(AAAA(*ip)))));
        }
        (RecordType::SOA, _) if apex => {
            if let Some(soa) = soa(zone, table.serial()) {
                response.add_answer(soa);
            }
        }
        _ => {}
    }
    // NODATA: the name exists, without records of this type; the SOA tells how long to cache that.
    if response.answers.is_empty() {
        if let Some(soa) = soa(zone, table.serial()) {
            response.add_authority(soa);
        }
    }
    Outcome::Answered
}

/// The zone's SOA: `zone` is the primary and `hostmaster.zone` the contact; refresh, retry and
/// expire mean nothing here (there are no secondaries), the minimum is the negative TTL.
fn soa(zone: &str, serial: u32) -> Option<Record> {
    let apex = Name::from_ascii(format!("{zone}.")).ok()?;
    let contact = Name::from_ascii(format!("hostmaster.{zone}.")).ok()?;
    let data = SOA::new(apex.clone(), contact, serial, 3600, 600, 86400, TTL);
    Some(Record::from_rdata(apex, TTL, RData::SOA(data)))
}

/// A query hickory cannot read: FORMERR if its header can be read (and it is not a response),
/// otherwise dropped.
fn form_error(query: &[u8]) -> Reply {
    if query.len() < HEADER_LEN {
        return Reply::dropped();
    }
    let Ok(header) = Header::read(&mut BinDecoder::new(query)) else { return Reply::dropped() };
    if header.metadata.message_type == MessageType::Response {
        return Reply::dropped();
    }
    let mut response = Message::error_msg(header.metadata.id, header.metadata.op_code, ResponseCode::FormErr);
    response.metadata.recursion_desired = header.metadata.recursion_desired;
    Reply { bytes: response.to_vec().ok(), outcome: Outcome::Malformed }
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
