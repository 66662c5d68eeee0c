//! The Unix socket: accepting, authorising, framing, version negotiation, and turning frames
//! into `Command`s for the daemon. A bad frame gets an error reply; the connection stays.

use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::codec::Framed;

use crate::authz::{self, Peer, Policy, Signature, SignatureCheck};
use crate::codesign::{self, AppRequirement};
use crate::daemon::{Command, ShareRight};
use dockroute_api::codec::{Frame, FrameCodec};
use dockroute_api::{
    parse_request, Answer, ApiError, ErrorCode, Event, Op, Outcome, Reply, ServerFrame, MAX_FRAME, PROTOCOL_VERSION,
};

/// The listening socket; removes its file when dropped (if it is still ours).
pub struct ApiSocket {
    pub listener: UnixListener,
    path: PathBuf,
    /// (device, inode) of the socket file we bound, so Drop never removes another's.
    identity: (u64, u64),
    /// Held for our lifetime: one helper per socket path, decided by the kernel.
    _lock: std::fs::File,
}

impl Drop for ApiSocket {
    fn drop(&mut self) {
        use std::os::unix::fs::MetadataExt;
        if std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.identity) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// An exclusive lock beside the socket: checking for a live helper by connecting is racy,
/// a lock is not.
fn lock_beside(path: &Path) -> io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;
    let mut lock_path = path.as_os_str().to_owned();
    lock_path.push(".lock");
    let file = std::fs::OpenOptions::new().create(true).truncate(false).write(true).mode(0o600).open(&lock_path)?;
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another helper is already serving {}", path.display()),
        ));
    }
    Ok(file)
}

/// Binds the API socket with `mode`, group-owned by the first allowed group that exists.
/// A socket file left by a crashed helper is replaced; a live helper, or a path that is not a
/// socket, is an error (we never delete what is not ours).
pub async fn bind(path: &Path, mode: u32, groups: &[String]) -> io::Result<ApiSocket> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let lock = lock_beside(path)?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!("{} exists and is not a socket", path.display()),
            ));
        }
        if UnixStream::connect(path).await.is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("another helper is already serving {}", path.display()),
            ));
        }
        std::fs::remove_file(path)?;
        tracing::info!("replaced the stale socket {} of a previous run", path.display());
    }
    // Created under a tight umask so there is no moment where it is more open than `mode`.
    let old = unsafe { libc::umask(0o177) };
    let bound = UnixListener::bind(path);
    unsafe { libc::umask(old) };
    let listener = bound.map_err(|e| io::Error::new(e.kind(), format!("cannot bind {}: {e}", path.display())))?;
    let identity = {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::symlink_metadata(path)?;
        (m.dev(), m.ino())
    };
    let socket = ApiSocket { listener, path: path.to_path_buf(), identity, _lock: lock };
    group_socket(path, groups)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(socket)
}

/// Gives the socket file to the first allowed group that exists (root:root if none does).
fn group_socket(path: &Path, groups: &[String]) -> io::Result<()> {
    let gid = authz::allowed_names(groups).iter().find_map(|g| authz::group_gid(g)).unwrap_or(0);
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    if unsafe { libc::chown(c.as_ptr(), 0, gid) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Ok, or why this peer may not (or no longer) use the API under `policy`; `app` is the app
/// bundle the helper belongs to, if any.
fn authorise(peer: &Peer, policy: &Policy, app: Option<&AppRequirement>, stream: &UnixStream) -> Result<(), String> {
    let allowed = authz::resolve(&authz::allowed_names(&policy.groups));
    authz::check(&authz::caller(peer), &allowed)?;
    let verify = |req: &str| {
        codesign::verify(std::os::fd::AsRawFd::as_raw_fd(stream), req).map_err(|e| format!("not authorised: {e}"))
    };
    match authz::signature_check(peer.uid, &policy.signature) {
        SignatureCheck::Skip => Ok(()),
        SignatureCheck::Verify(req) => verify(req),
        SignatureCheck::VerifyApp => {
            let app = app.ok_or_else(|| authz::unreadable_app_requirement("no app bundle is known"))?;
            verify(&app.current().map_err(|why| authz::unreadable_app_requirement(&why))?)
        }
    }
}

/// Whether a peer `authorise` let in may also share (`authz::share_check`). A non-root peer let
/// in under a required signature is the app whose signature was just verified.
fn share_right(peer: &Peer, policy: &Policy) -> ShareRight {
    let signed_app = peer.uid != 0 && matches!(policy.signature, Signature::Required(_) | Signature::App);
    match authz::share_check(&authz::caller(peer), &authz::resolve(&policy.share_groups), signed_app) {
        Ok(()) => ShareRight::Granted,
        Err(why) => ShareRight::Refused(why),
    }
}

/// Accepts connections until the process ends.
pub async fn serve(
    socket: &ApiSocket,
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    mut policy: watch::Receiver<Policy>,
    app: Option<Arc<AppRequirement>>,
) {
    loop {
        let accepted = tokio::select! {
            a = socket.listener.accept() => a,
            changed = policy.changed(), if policy.has_changed().is_ok() => {
                // A reloaded allow-group: the file's group follows, so new members get in.
                let groups = policy.borrow_and_update().groups.clone();
                if changed.is_ok() {
                    if let Err(e) = group_socket(&socket.path, &groups) {
                        tracing::warn!("cannot regroup {}: {e}", socket.path.display());
                    }
                }
                continue;
            }
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!("accept on the API socket: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let (commands, events, policy, app) = (commands.clone(), events.clone(), policy.clone(), app.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(stream, commands, events, policy, app).await {
                tracing::debug!("API connection ended: {e}");
            }
        });
    }
}

async fn connection(
    stream: UnixStream,
    commands: mpsc::Sender<Command>,
    events: broadcast::Sender<Event>,
    mut policy: watch::Receiver<Policy>,
    app: Option<Arc<AppRequirement>>,
) -> io::Result<()> {
    let cred = stream.peer_cred()?;
    let peer = Peer { uid: cred.uid(), gid: cred.gid(), pid: cred.pid() };
    // Decided before a single byte from the caller is parsed.
    let verdict = authorise(&peer, &policy.borrow_and_update(), app.as_deref(), &stream);
    if let Err(why) = verdict {
        tracing::warn!(uid = peer.uid, pid = peer.pid, "API connection refused: {why}");
        let mut framed = Framed::new(stream, FrameCodec::new(MAX_FRAME));
        send(&mut framed, &reply(None, Err(ApiError::new(ErrorCode::NotAuthorised, why)))).await?;
        return Ok(());
    }
    let mut framed = Framed::new(stream, FrameCodec::new(MAX_FRAME));
    tracing::debug!(uid = peer.uid, pid = peer.pid, "API connection");
    let share = share_right(&peer, &policy.borrow());
    let mut conn = Conn { hello: false, events: None, source: events, share, peer };
    loop {
        let frame = tokio::select! {
            f = framed.next() => f,
            // A policy reload that excludes this caller ends its connection too.
            changed = policy.changed(), if policy.has_changed().is_ok() => {
                if changed.is_err() {
                    continue;
                }
                let verdict = authorise(&peer, &policy.borrow_and_update(), app.as_deref(), framed.get_ref());
                if let Err(why) = verdict {
                    tracing::warn!(uid = peer.uid, pid = peer.pid, "API connection closed after a policy change: {why}");
                    send(&mut framed, &reply(None, Err(ApiError::new(ErrorCode::NotAuthorised, why)))).await?;
                    return Ok(());
                }
                conn.share = share_right(&peer, &policy.borrow());
                continue;
            }
            ev = next_event(&mut conn.events) => {
                match ev {
                    Some(event) => send(&mut framed, &ServerFrame::Event { event }).await?,
                    None => conn.events = None,
                }
                continue;
            }
        };
        let out = match frame {
            None => return Ok(()),
            Some(Err(e)) => return Err(e),
            Some(Ok(Frame::TooLarge(n))) => {
                let msg = format!("frame of {n} bytes exceeds the limit of {MAX_FRAME}");
                reply(None, Err(ApiError::new(ErrorCode::TooLarge, msg)))
            }
            Some(Ok(Frame::Data(bytes))) => conn.handle(&bytes, &commands).await,
        };
        send(&mut framed, &out).await?;
    }
}

struct Conn {
    hello: bool,
    /// Set once the client subscribes; until then it costs the daemon nothing.
    events: Option<broadcast::Receiver<Event>>,
    source: broadcast::Sender<Event>,
    /// Whether this caller may share, or why not (the daemon's core decides with it; a refusal
    /// is told to the caller and the connection stays).
    share: ShareRight,
    peer: Peer,
}

impl Conn {
    async fn handle(&mut self, bytes: &[u8], commands: &mpsc::Sender<Command>) -> ServerFrame {
        let req = match parse_request(bytes) {
            Ok(r) => r,
            Err((id, e)) => return reply(id, Err(e)),
        };
        let id = Some(req.id);
        match req.op {
            Op::Hello { version, client } => {
                if version != PROTOCOL_VERSION {
                    let msg = format!("this helper speaks protocol version {PROTOCOL_VERSION}, not {version}");
                    return reply(id, Err(ApiError::new(ErrorCode::UnsupportedVersion, msg)));
                }
                tracing::debug!("API client {client:?} says hello");
                self.hello = true;
                let server = format!("dockroute-helper {}", env!("CARGO_PKG_VERSION"));
                reply(id, Ok(Answer::Hello { version: PROTOCOL_VERSION, server }))
            }
            _ if !self.hello => {
                reply(id, Err(ApiError::new(ErrorCode::HelloRequired, "send hello with the protocol version first")))
            }
            Op::Subscribe => {
                if self.events.is_none() {
                    self.events = Some(self.source.subscribe());
                }
                reply(id, Ok(Answer::Done))
            }
            op => {
                let (tx, rx) = oneshot::channel();
                let failed = || Err(ApiError::new(ErrorCode::Failed, "the helper is shutting down"));
                if commands.send(Command { op, right: self.share.clone(), reply: tx }).await.is_err() {
                    return reply(id, failed());
                }
                let answer = rx.await.unwrap_or_else(|_| failed());
                if let Err(e @ ApiError { code: ErrorCode::NotAuthorised, .. }) = &answer {
                    tracing::warn!(uid = self.peer.uid, pid = self.peer.pid, "share operation refused: {}", e.message);
                }
                reply(id, answer)
            }
        }
    }
}

fn reply(id: Option<u64>, r: Result<Answer, ApiError>) -> ServerFrame {
    ServerFrame::Reply(Reply {
        id,
        outcome: match r {
            Ok(a) => Outcome::Ok(a),
            Err(e) => Outcome::Error(e),
        },
    })
}

async fn send(framed: &mut Framed<UnixStream, FrameCodec>, frame: &ServerFrame) -> io::Result<()> {
    let bytes = serde_json::to_vec(frame).map_err(io::Error::other)?;
    framed.send(Bytes::from(bytes)).await
}

async fn next_event(rx: &mut Option<broadcast::Receiver<Event>>) -> Option<Event> {
    let Some(r) = rx.as_mut() else { return std::future::pending().await };
    loop {
        match r.recv().await {
            Ok(e) => return Some(e),
            // A slow subscriber misses intermediate states; the next one is complete anyway.
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}
