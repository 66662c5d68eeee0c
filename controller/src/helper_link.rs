//! The controller's link to the privileged helper: opened with our secret, the tunnel asked
//! for, its events subscribed; made again the same way when the helper went away (a restarted
//! helper knows nothing of us), with the reason it cannot be reached kept as the user sees it.

use std::path::PathBuf;

use dockroute_api::client::{Client, ClientError};
use dockroute_api::{Event, Op, Redacted};
use tokio::sync::{broadcast, watch};

use crate::view::{self, Problem};

/// How the helper's logs name us.
const CLIENT_NAME: &str = "dockroute controller";

pub struct HelperLink {
    socket: PathBuf,
    secret: Vec<u8>,
    /// None until connected, and after the helper went away (restart, upgrade).
    client: Option<Client>,
    events: Option<broadcast::Receiver<Event>>,
    /// Why the helper cannot be reached, as the user sees it; None while it can.
    problem: Option<Problem>,
    /// The user's HTTPS switch, told to every new connection before the tunnel is asked for
    /// (so a front the user switched off never starts in between).
    serve_https: watch::Receiver<bool>,
}

/// What `connect` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Connection {
    /// The link was up already.
    Kept,
    /// Opened now: the helper has our secret, but none of our routes.
    Made,
}

impl HelperLink {
    /// A link not yet open; `connect` opens it.
    pub fn new(socket: PathBuf, secret: Vec<u8>, serve_https: watch::Receiver<bool>) -> HelperLink {
        HelperLink { socket, secret, client: None, events: None, problem: None, serve_https }
    }

    pub fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    /// Why the helper cannot be reached, if it cannot.
    pub fn problem(&self) -> Option<&Problem> {
        self.problem.as_ref()
    }

    /// The open connection, if any (it may have died since: `connect` finds out).
    pub fn client(&self) -> Option<&Client> {
        self.client.as_ref().filter(|c| c.is_connected())
    }

    /// Opens the link unless it is up. On failure the problem says what the user can do.
    pub async fn connect(&mut self) -> Result<Connection, Problem> {
        if self.client().is_some() {
            return Ok(Connection::Kept);
        }
        self.client = None;
        let serve_https = *self.serve_https.borrow();
        match open(&self.socket, &self.secret, serve_https).await {
            Ok((client, events)) => {
                self.client = Some(client);
                self.events = Some(events);
                self.problem = None;
                tracing::info!("connected to the helper at {}", self.socket.display());
                Ok(Connection::Made)
            }
            Err(e) => {
                let problem = view::helper_problem(&self.socket, &e, self.socket.exists());
                self.problem = Some(problem.clone());
                Err(problem)
            }
        }
    }

    /// The next event the helper pushes. None when some were missed (the receiver lagged) or
    /// the connection ended; after that, it waits for ever until `connect` makes a new one.
    pub async fn next_event(&mut self) -> Option<Event> {
        let Some(rx) = self.events.as_mut() else { return std::future::pending().await };
        match rx.recv().await {
            Ok(e) => Some(e),
            Err(broadcast::error::RecvError::Lagged(_)) => None,
            Err(broadcast::error::RecvError::Closed) => {
                self.events = None;
                None
            }
        }
    }
}

/// Connects to the helper, hands it the secret and the HTTPS switch, asks for the tunnel and
/// subscribes to its events.
async fn open(
    socket: &std::path::Path,
    secret: &[u8],
    serve_https: bool,
) -> Result<(Client, broadcast::Receiver<Event>), ClientError> {
    let client = Client::connect(socket, CLIENT_NAME).await?;
    client.call(Op::SetSecret { secret: Redacted(String::from_utf8_lossy(secret).into_owned()) }).await?;
    send_https(&client, serve_https).await?;
    client.call(Op::Connect).await?;
    let events = client.subscribe().await?;
    Ok((client, events))
}

/// Tells the helper the user's HTTPS switch. A helper from before the switch does not know the
/// operation: it serves as its config says, and nothing else is wrong.
pub async fn send_https(client: &Client, serve: bool) -> Result<(), ClientError> {
    match client.call(Op::SetHttps { serve }).await {
        Ok(_) => Ok(()),
        Err(ClientError::Api(e)) if e.code == dockroute_api::ErrorCode::UnknownOp => {
            tracing::info!("the helper predates the HTTPS switch: it serves HTTPS as its config says");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Connects without handing over a secret or asking for anything (for a teardown).
pub async fn connect_plain(socket: &std::path::Path) -> Result<Client, ClientError> {
    Client::connect(socket, CLIENT_NAME).await
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::view::{Action, ProblemKind};

    #[tokio::test]
    async fn a_missing_helper_is_a_problem_to_install_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut link = HelperLink::new(dir.path().join("none.sock"), b"s".to_vec(), watch::channel(true).1);
        assert_eq!(link.problem(), None, "nothing known before the first try");
        let p = link.connect().await.unwrap_err();
        assert_eq!((p.kind, p.action), (ProblemKind::HelperNotInstalled, Some(Action::InstallHelper)));
        assert_eq!(link.problem(), Some(&p), "kept for the view");
        assert!(link.client().is_none());
        assert_eq!(link.connect().await.unwrap_err(), p, "the same problem on every try");
    }

    #[tokio::test]
    async fn a_socket_nobody_serves_is_a_stopped_helper() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stale.sock");
        // A helper that died without removing its socket.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let mut link = HelperLink::new(path.clone(), b"s".to_vec(), watch::channel(true).1);
        let p = link.connect().await.unwrap_err();
        assert_eq!(p.kind, ProblemKind::HelperNotRunning);
        assert!(p.detail.contains(&path.display().to_string()), "{}", p.detail);
    }

    #[tokio::test]
    async fn a_link_without_events_waits_instead_of_spinning() {
        let dir = tempfile::tempdir().unwrap();
        let mut link = HelperLink::new(dir.path().join("none.sock"), b"s".to_vec(), watch::channel(true).1);
        let waited = tokio::time::timeout(Duration::from_millis(50), link.next_event()).await;
        assert!(waited.is_err(), "no connection, no events: next_event must not return");
    }
}
