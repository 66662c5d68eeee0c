//! `dockroute-helper share …`: the share's operations through the helper's API, so they are
//! authorised like every other (adding, revoking and exposing need the right to share).

use std::net::Ipv4Addr;
use std::path::Path;

use dockroute_api::share::{render_share, ShareAdd};
use dockroute_api::{Answer, Client, Op};

use super::wgconf;

/// What `share` was asked to do.
pub enum ShareCommand {
    Add { name: String, ip: Option<Ipv4Addr>, endpoint: Option<String>, qr: bool, rotate: bool },
    List { json: bool },
    Revoke { name: String },
    Expose { network: String, exposed: bool },
}

pub fn run(socket: &Path, command: ShareCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let c = Client::connect(socket, "dockroute-helper share").await?;
        match command {
            ShareCommand::Add { name, ip, endpoint, qr, rotate } => {
                let config = c.share_add(ShareAdd { name, ip, endpoint, rotate }).await?;
                let text = config.text.0;
                if qr {
                    print!("{}", wgconf::qr_for_terminal(&text).map_err(anyhow::Error::msg)?);
                    eprintln!("{}: scan this in the WireGuard app (Add tunnel → Create from QR code)", config.name);
                } else {
                    print!("{text}");
                }
                eprintln!(
                    "This is the only copy of {}'s private key: the helper keeps only the public one.",
                    config.name
                );
            }
            ShareCommand::List { json } => {
                let share = c.share_list().await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&share)?);
                } else {
                    print!("{}", render_share(&share));
                }
            }
            ShareCommand::Revoke { name } => match c.call(Op::ShareRevoke { name: name.clone() }).await? {
                Answer::Done => eprintln!("{name} is cut off; their key is forgotten"),
                other => anyhow::bail!("unexpected answer {other:?}"),
            },
            ShareCommand::Expose { network, exposed } => {
                match c.call(Op::SetNetworkExposed { network: network.clone(), exposed }).await? {
                    Answer::Done if exposed => eprintln!("{network}: its containers are exposed to teammates"),
                    Answer::Done => eprintln!("{network}: no longer exposed"),
                    other => anyhow::bail!("unexpected answer {other:?}"),
                }
            }
        }
        Ok(())
    })
}
