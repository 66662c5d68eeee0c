//! `dockroute-load`: the traffic of the load suite (`tests-e2e/tests/load.rs`, `scripts/load.sh`).
//!
//!   dockroute-load conns ADDR:PORT COUNT TIMEOUT_S
//!       opens COUNT TCP connections (at most 512 handshakes in flight), holds them all open at
//!       once, then sends one HTTP GET on each and counts the 200 answers. Prints one line of
//!       `key=value`: opened, answered, failed, open_at_once, elapsed_ms.
//!   dockroute-load flood ADDR:PORT SECONDS RATE
//!       sends RATE datagrams per second to ADDR:PORT over UDP for SECONDS, half of them
//!       Hellos with fresh nonces, half garbage (random bytes, some behind a data header), and
//!       keeps opening TCP connections to the same port that send garbage frames and hold on
//!       (up to 64 at once). Prints what it sent.
//!
//! Every loop is bounded in count and time; the address is the test's own namespace.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

mod sys {
    #[repr(C)]
    pub struct Rlimit {
        pub cur: u64,
        pub max: u64,
    }
    pub const RLIMIT_NOFILE: i32 = 7;
    unsafe extern "C" {
        pub fn setrlimit(resource: i32, rlim: *const Rlimit) -> i32;
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let code = match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["conns", addr, count, timeout] => {
            rt.block_on(conns(parse(addr), parse(count), Duration::from_secs(parse(timeout))))
        }
        ["flood", addr, seconds, rate] => {
            rt.block_on(flood(parse(addr), Duration::from_secs(parse(seconds)), parse(rate)))
        }
        _ => {
            eprintln!("usage: dockroute-load conns ADDR:PORT COUNT TIMEOUT_S | flood ADDR:PORT SECONDS RATE");
            2
        }
    };
    std::process::exit(code);
}

fn parse<T: std::str::FromStr>(s: &str) -> T {
    s.parse().unwrap_or_else(|_| {
        eprintln!("dockroute-load: cannot parse {s:?}");
        std::process::exit(2)
    })
}

fn raise_fd_limit(want: u64) {
    let lim = sys::Rlimit { cur: want, max: want };
    // SAFETY: a valid rlimit struct for the call's duration.
    if unsafe { sys::setrlimit(sys::RLIMIT_NOFILE, &lim) } != 0 {
        eprintln!("dockroute-load: cannot raise the open-file limit to {want}");
    }
}

async fn conns(addr: SocketAddr, count: usize, timeout: Duration) -> i32 {
    raise_fd_limit(count as u64 * 2 + 256);
    let start = Instant::now();
    let deadline = tokio::time::Instant::now() + timeout;
    let handshakes = Arc::new(tokio::sync::Semaphore::new(512));
    let barrier = Arc::new(tokio::sync::Barrier::new(count));
    let open_now = Arc::new(AtomicU64::new(0));
    let open_at_once = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..count {
        let (handshakes, barrier, open_now, open_at_once) =
            (handshakes.clone(), barrier.clone(), open_now.clone(), open_at_once.clone());
        tasks.spawn(async move {
            let stream = {
                let _permit = handshakes.acquire().await;
                tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await.ok().and_then(Result::ok)
            };
            if stream.is_some() {
                open_now.fetch_add(1, Ordering::SeqCst);
            }
            // Every connection is open before any request: they are all concurrent.
            let leader = tokio::time::timeout_at(deadline, barrier.wait()).await.ok().is_some_and(|r| r.is_leader());
            if leader {
                open_at_once.store(open_now.load(Ordering::SeqCst), Ordering::SeqCst);
            }
            let mut stream = stream?;
            let req = format!("GET / HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            let answered = async {
                stream.write_all(req.as_bytes()).await.ok()?;
                let mut reply = Vec::new();
                stream.read_to_end(&mut reply).await.ok()?;
                reply.starts_with(b"HTTP/1.1 200").then_some(())
            };
            tokio::time::timeout_at(deadline, answered).await.ok().flatten()
        });
    }
    let (mut answered, mut failed) = (0u64, 0u64);
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Some(())) => answered += 1,
            _ => failed += 1,
        }
    }
    println!(
        "opened={} answered={answered} failed={failed} open_at_once={} elapsed_ms={}",
        open_now.load(Ordering::SeqCst),
        open_at_once.load(Ordering::SeqCst),
        start.elapsed().as_millis()
    );
    i32::from(answered != count as u64)
}

/// xorshift64: fast, and random enough for garbage.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn fill(&mut self, b: &mut [u8]) {
        for chunk in b.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

async fn flood(addr: SocketAddr, duration: Duration, rate: u64) -> i32 {
    let bind: SocketAddr = if addr.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" }.parse().expect("address");
    let Ok(udp) = UdpSocket::bind(bind).await else {
        eprintln!("dockroute-load: cannot open a UDP socket");
        return 1;
    };
    let until = Instant::now() + duration;
    let tcp_sent = Arc::new(AtomicU64::new(0));
    let tcp = tokio::spawn(tcp_flood(addr, until, tcp_sent.clone()));
    let seed = Instant::now().elapsed().as_nanos() as u64 | 1;
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ seed);
    let (mut hellos, mut garbage, mut buf) = (0u64, 0u64, vec![0u8; 1500]);
    let start = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    while Instant::now() < until {
        tick.tick().await;
        // Catch up to the rate by the clock, so a slow tick does not lower it.
        let due = (start.elapsed().as_micros() as u64 * rate / 1_000_000).saturating_sub(hellos + garbage);
        for _ in 0..due.min(rate / 100 + 1) {
            let len = if (hellos + garbage).is_multiple_of(2) {
                // Hello: type 1, version 1, a fresh nonce, zero padding to 64 bytes.
                buf[..64].fill(0);
                buf[0] = 1;
                buf[1] = 1;
                rng.fill(&mut buf[4..20]);
                hellos += 1;
                64
            } else {
                let len = 1 + (rng.next() % 1400) as usize;
                rng.fill(&mut buf[..len]);
                if rng.next().is_multiple_of(2) && len >= 20 {
                    // A data header with a random session: the data path's checks, not the decoder's.
                    buf[..4].copy_from_slice(&[5, 1, 0, 0]);
                }
                garbage += 1;
                len
            };
            let _ = udp.try_send_to(&buf[..len], addr);
        }
    }
    let _ = tcp.await;
    println!("udp_hellos={hellos} udp_garbage={garbage} tcp_connections={}", tcp_sent.load(Ordering::SeqCst));
    0
}

/// Connections to the helper's TCP port that send garbage frames (and a Hello frame) and hold
/// on: at most 64 at once, a new one every 5 ms.
async fn tcp_flood(addr: SocketAddr, until: Instant, sent: Arc<AtomicU64>) {
    let mut held: std::collections::VecDeque<TcpStream> = std::collections::VecDeque::new();
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let Ok(Ok(mut s)) = tokio::time::timeout(Duration::from_millis(500), TcpStream::connect(addr)).await else {
            continue;
        };
        sent.fetch_add(1, Ordering::SeqCst);
        let mut frame = vec![0u8; 2 + 64];
        frame[..2].copy_from_slice(&64u16.to_be_bytes());
        frame[2] = 1;
        frame[3] = 1;
        rng.fill(&mut frame[6..22]);
        let mut junk = vec![0u8; 1 + (rng.next() % 3000) as usize];
        rng.fill(&mut junk);
        let _ = tokio::time::timeout(Duration::from_millis(100), async {
            let _ = s.write_all(&frame).await;
            let _ = s.write_all(&junk).await;
        })
        .await;
        held.push_back(s);
        if held.len() > 64 {
            held.pop_front();
        }
    }
}
