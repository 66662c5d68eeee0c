//! The async client the app (and `dockroute-helper status`) uses to talk to the helper.
//! One background task owns the socket; calls are matched to replies by id, pushed events go
//! to a broadcast channel.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::UnixStream;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::codec::Framed;

use crate::codec::{Frame, FrameCodec};
use crate::types::{Answer, ApiError, ErrorCode, Event, Op, Outcome, Request, ServerFrame, Status, PROTOCOL_VERSION};

#[derive(Debug)]
pub enum ClientError {
    /// Nothing listens at the path (or it does not exist).
    NotRunning(PathBuf),
    /// The helper (or the socket's permissions) refused us.
    NotAuthorised(String),
    Api(ApiError),
    Io(io::Error),
    /// The helper closed the connection.
    Closed,
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::NotRunning(p) => write!(f, "helper not running at {}", p.display()),
            ClientError::NotAuthorised(m) => write!(f, "{m}"),
            ClientError::Api(e) => write!(f, "{e}"),
            ClientError::Io(e) => write!(f, "{e}"),
            ClientError::Closed => write!(f, "the helper closed the connection"),
        }
    }
}

impl std::error::Error for ClientError {}

type Pending = oneshot::Sender<Result<Answer, ApiError>>;

/// Replies come from the (root, trusted) helper and a status with many routes can be large;
/// requests stay under the helper's `MAX_FRAME`.
const MAX_REPLY: usize = 16 << 20;
/// No call waits longer than this for its answer.
const CALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

pub struct Client {
    requests: mpsc::UnboundedSender<(Op, Pending)>,
    events: broadcast::Sender<Event>,
}

impl Client {
    /// Connects and says hello. `name` identifies the caller in the helper's logs.
    pub async fn connect(path: &Path, name: &str) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).await.map_err(|e| match e.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NotRunning(path.to_path_buf()),
            io::ErrorKind::PermissionDenied => ClientError::NotAuthorised(format!(
                "not authorised: {} accepts only root and members of the helper's group ({e})",
                path.display()
            )),
            _ => ClientError::Io(e),
        })?;
        // Only root may answer for the helper: a socket path someone else could take over must
        // not receive the tunnel secret.
        let server_uid = stream.peer_cred().map_err(ClientError::Io)?.uid();
        if server_uid != 0 {
            return Err(ClientError::NotAuthorised(format!(
                "{} is served by uid {server_uid}, not root: refusing to talk to it",
                path.display()
            )));
        }
        let (requests, rx) = mpsc::unbounded_channel();
        let events = broadcast::channel(64).0;
        tokio::spawn(pump(Framed::new(stream, FrameCodec::new(MAX_REPLY)), rx, events.clone()));
        let client = Client { requests, events };
        client.call(Op::Hello { version: PROTOCOL_VERSION, client: name.to_string() }).await?;
        Ok(client)
    }

    pub async fn call(&self, op: Op) -> Result<Answer, ClientError> {
        let (tx, rx) = oneshot::channel();
        self.requests.send((op, tx)).map_err(|_| ClientError::Closed)?;
        match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Ok(Ok(Ok(a))) => Ok(a),
            Ok(Ok(Err(e))) if e.code == ErrorCode::NotAuthorised => Err(ClientError::NotAuthorised(e.message)),
            Ok(Ok(Err(e))) if e.code == ErrorCode::Failed && self.requests.is_closed() => Err(ClientError::Closed),
            Ok(Ok(Err(e))) => Err(ClientError::Api(e)),
            Ok(Err(_)) => Err(ClientError::Closed),
            Err(_) => Err(ClientError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("the helper did not answer within {CALL_TIMEOUT:?}"),
            ))),
        }
    }

    /// False once the connection is gone (the helper restarted or stopped): reconnect then.
    pub fn is_connected(&self) -> bool {
        !self.requests.is_closed()
    }

    pub async fn status(&self) -> Result<Status, ClientError> {
        match self.call(Op::Status).await? {
            Answer::Status(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// A teammate's WireGuard config (made now; `rotate` replaces an existing key).
    pub async fn share_add(&self, add: crate::share::ShareAdd) -> Result<crate::share::ShareConfig, ClientError> {
        match self.call(Op::ShareAdd(add)).await? {
            Answer::ShareConfig(c) => Ok(c),
            other => Err(unexpected(other)),
        }
    }

    pub async fn share_list(&self) -> Result<crate::share::ShareStatus, ClientError> {
        match self.call(Op::ShareList).await? {
            Answer::Share(s) => Ok(s),
            other => Err(unexpected(other)),
        }
    }

    /// Subscribes; the receiver gets every state change from now on.
    pub async fn subscribe(&self) -> Result<broadcast::Receiver<Event>, ClientError> {
        let rx = self.events.subscribe();
        self.call(Op::Subscribe).await?;
        Ok(rx)
    }
}

fn unexpected(a: Answer) -> ClientError {
    ClientError::Api(ApiError::new(ErrorCode::Failed, format!("unexpected answer {a:?}")))
}

async fn pump(
    mut framed: Framed<UnixStream, FrameCodec>,
    mut requests: mpsc::UnboundedReceiver<(Op, Pending)>,
    events: broadcast::Sender<Event>,
) {
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut next_id = 1u64;
    // Why the connection is unusable, once it is: every later call gets this answer.
    let mut fatal: Option<ApiError> = None;
    while fatal.is_none() {
        tokio::select! {
            r = requests.recv() => {
                let Some((op, tx)) = r else { return };
                let id = next_id;
                next_id += 1;
                let bytes = match serde_json::to_vec(&Request { id, op }) {
                    Ok(b) => b,
                    Err(e) => { let _ = tx.send(Err(ApiError::new(ErrorCode::BadRequest, e.to_string()))); continue; }
                };
                pending.insert(id, tx);
                if let Err(e) = framed.send(Bytes::from(bytes)).await {
                    // The helper may have refused us and closed before our write: its reason is
                    // still waiting to be read, and it explains more than "broken pipe".
                    let lost = ApiError::new(ErrorCode::Failed, format!("connection to the helper lost: {e}"));
                    fatal = Some(closing_reason(&mut framed).await.unwrap_or(lost));
                }
            }
            f = framed.next() => {
                let bytes = match f {
                    Some(Ok(Frame::Data(b))) => b,
                    Some(Ok(Frame::TooLarge(n))) => {
                        fatal = Some(ApiError::new(ErrorCode::TooLarge, format!("a reply of {n} bytes from the helper")));
                        continue;
                    }
                    _ => { fatal = Some(ApiError::new(ErrorCode::Failed, "the helper closed the connection")); continue; }
                };
                match serde_json::from_slice::<ServerFrame>(&bytes) {
                    Ok(ServerFrame::Event { event }) => { let _ = events.send(event); }
                    Ok(ServerFrame::Reply(r)) => {
                        let result = match r.outcome { Outcome::Ok(a) => Ok(a), Outcome::Error(e) => Err(e) };
                        match (r.id, result) {
                            (Some(id), result) => { if let Some(tx) = pending.remove(&id) { let _ = tx.send(result); } }
                            // An id-less error (e.g. not authorised) concerns the whole connection.
                            (None, Err(e)) => fatal = Some(e),
                            (None, Ok(_)) => {}
                        }
                    }
                    Err(e) => tracing::warn!("unreadable frame from the helper: {e}"),
                }
            }
        }
    }
    let fatal = fatal.unwrap_or_else(|| ApiError::new(ErrorCode::Failed, "closed"));
    requests.close();
    for (_, tx) in pending.drain() {
        let _ = tx.send(Err(fatal.clone()));
    }
    while let Some((_, tx)) = requests.recv().await {
        let _ = tx.send(Err(fatal.clone()));
    }
}

/// Reads what is left on a closing connection (bounded) and returns an id-less error if the
/// helper sent one, e.g. "not authorised".
async fn closing_reason(framed: &mut Framed<UnixStream, FrameCodec>) -> Option<ApiError> {
    let read = async {
        while let Some(Ok(Frame::Data(bytes))) = framed.next().await {
            if let Ok(ServerFrame::Reply(r)) = serde_json::from_slice::<ServerFrame>(&bytes) {
                if let (None, Outcome::Error(e)) = (r.id, r.outcome) {
                    return Some(e);
                }
            }
        }
        None
    };
    tokio::time::timeout(std::time::Duration::from_secs(1), read).await.ok().flatten()
}
