//! macOS: the pf anchor (`pf.rs` holds the rules and the parsing). Untested here: only the
//! `pfctl` calls themselves.

use dockroute_stdx::process::Cmd;

use super::pf::{enable_token, rules, ANCHOR};
use super::{Plan, Redirect};

const PFCTL: &str = "/sbin/pfctl";

#[derive(Debug)]
pub struct PfAnchor {
    ifname: String,
    /// The enable reference we hold, released on remove.
    token: Option<u64>,
}

impl PfAnchor {
    pub fn new(ifname: &str) -> PfAnchor {
        PfAnchor { ifname: ifname.to_string(), token: None }
    }
}

fn pfctl(args: &[&str], stdin: Option<String>) -> Result<String, String> {
    let mut cmd = Cmd::new(PFCTL).args(args.iter().copied());
    if let Some(s) = stdin {
        cmd = cmd.stdin(s);
    }
    // pfctl -E says its token on stderr, so both streams are read.
    let out = cmd.output().map_err(|e| e.to_string())?;
    let text = out.stdout.clone() + &out.stderr;
    if out.success() {
        Ok(text)
    } else {
        Err(format!("{} failed: {}", cmd.line(), text.trim()))
    }
}

impl Redirect for PfAnchor {
    fn apply(&mut self, plan: &Plan) -> Result<(), String> {
        let Some(ruleset) = rules(plan, &self.ifname) else { return self.remove() };
        pfctl(&["-a", ANCHOR, "-f", "-"], Some(ruleset))?;
        if self.token.is_none() {
            let out = pfctl(&["-E"], None)?;
            self.token = Some(enable_token(&out).ok_or_else(|| format!("pfctl -E gave no token: {out}"))?);
        }
        Ok(())
    }

    fn remove(&mut self) -> Result<(), String> {
        pfctl(&["-a", ANCHOR, "-F", "all"], None)?;
        if let Some(token) = self.token {
            pfctl(&["-X", &token.to_string()], None)?;
            // Only once it was given back: a failed `-X` keeps the token for the next try.
            self.token = None;
        }
        Ok(())
    }
}
