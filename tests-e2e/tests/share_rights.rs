//! Handing out teammate keys is a higher privilege than routing, against the real helper: a
//! real unprivileged user in the allowed group may route and list, but `share_add`,
//! `share_revoke` and `set_network_exposed` are answered `not_authorised` and the connection
//! stays up, and so are `ca_trust`, `ca_untrust` and `ca_trusted` (changing what the machine
//! trusts: no trust-store file or record appears); once a `share-group` names the user's group (reloaded live), the same requests
//! get past the check. Needs root (to make the user and run as them).

use std::time::Duration;

use dockroute_e2e::netns::{require_root, Topology};
use dockroute_e2e::rig::{bin, read, Rig, API_CLIENT_PY};

// Slots 60..=64 are the share's hostile tests'.
const SLOT: u8 = 61;

/// After `API_CLIENT_PY`, on one connection: hello, then each request given as JSON on the
/// command line; prints each answer on a line.
const CLIENT_PY: &str = r#"
send({"id": 1, "op": "hello", "version": 1, "client": "share-rights"}); recv()
for i, req in enumerate(sys.argv[2:]):
    o = json.loads(req); o["id"] = 10 + i; send(o)
    print(json.dumps(recv()), flush=True)
"#;

struct TempAccount {
    user: &'static str,
    groups: [&'static str; 2],
}

impl TempAccount {
    fn create() -> TempAccount {
        let me = TempAccount { user: "drtest-sharer", groups: ["drtest-router", "drtest-sharers"] };
        me.remove();
        for g in me.groups {
            run(&["groupadd", g]);
        }
        run(&["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "-G", me.groups[0], me.user]);
        me
    }

    fn remove(&self) {
        let _ = std::process::Command::new("userdel").arg(self.user).output();
        for g in self.groups {
            let _ = std::process::Command::new("groupdel").arg(g).output();
        }
    }
}

impl Drop for TempAccount {
    fn drop(&mut self) {
        self.remove();
    }
}

fn run(args: &[&str]) -> String {
    let out = std::process::Command::new(args[0]).args(&args[1..]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const ADD: &str = r#"{"op":"share_add","name":"mallory","ip":null,"endpoint":null}"#;
const REVOKE: &str = r#"{"op":"share_revoke","name":"alice"}"#;
const EXPOSE: &str = r#"{"op":"set_network_exposed","network":"4f1d","exposed":true}"#;
const CA_TRUST: &str = r#"{"op":"ca_trust"}"#;
const CA_UNTRUST: &str = r#"{"op":"ca_untrust"}"#;
const CA_TRUSTED: &str = r#"{"op":"ca_trusted","trusted":true}"#;
const STATUS: &str = r#"{"op":"status"}"#;
const LIST: &str = r#"{"op":"share_list"}"#;

#[test]
fn an_api_user_who_may_route_is_refused_minting_a_teammate_key_and_keeps_the_connection() {
    if !require_root() {
        return;
    }
    let acct = TempAccount::create();
    let mut rig = Rig::new(SLOT, |t| vec![t.ctr_subnet()]).unwrap();
    run(&["chmod", "755", &rig.topo.dir().to_string_lossy()]);
    let cfg = std::fs::read_to_string(&rig.config).unwrap();
    std::fs::write(&rig.config, format!("{cfg}allow-group {}\n", acct.groups[0])).unwrap();
    rig.start_helper().unwrap();
    let sock = rig.api_socket().to_string_lossy().into_owned();
    let as_user = |reqs: &[&str]| -> Vec<serde_json::Value> {
        let script = format!("{API_CLIENT_PY}{CLIENT_PY}");
        let mut args = vec!["-u", acct.user, "--", "python3", "-c", &script, &sock];
        args.extend_from_slice(reqs);
        let out = std::process::Command::new("runuser").args(&args).output().unwrap();
        assert!(out.status.success(), "client: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };
    let code = |v: &serde_json::Value| v["error"]["code"].as_str().unwrap_or("").to_string();

    let answers = as_user(&[ADD, REVOKE, EXPOSE, CA_TRUST, CA_UNTRUST, CA_TRUSTED, STATUS, LIST]);
    assert_eq!(answers.len(), 8, "every request answered on the one connection: {answers:?}");
    for a in &answers[..6] {
        assert_eq!(code(a), "not_authorised", "{a}");
        let msg = a["error"]["message"].as_str().unwrap();
        assert!(msg.starts_with("not authorised to share: user drtest-sharer"), "{msg}");
        assert!(msg.contains("share-group"), "it says how to get the right: {msg}");
    }
    assert!(answers[6]["ok"]["kind"] == "status", "routing-level requests still served after: {}", answers[6]);
    assert!(answers[7]["ok"]["kind"] == "share", "listing the share is not sharing: {}", answers[7]);
    let record = rig.config.with_file_name("dockroute.ca.trust");
    assert!(!record.exists(), "a refused ca_trusted recorded nothing");
    let machine_store = std::fs::read_dir("/usr/local/share/ca-certificates")
        .map(|r| r.filter_map(|e| e.ok()).any(|e| e.file_name().to_string_lossy().starts_with("dockroute-")));
    assert!(!machine_store.unwrap_or(false), "a refused ca_trust added nothing to the system store");
    Topology::wait_until("the refusal in the helper log", Duration::from_secs(3), || {
        read(&rig.helper_log).contains("share operation refused")
    })
    .unwrap();
    let state = rig.config.with_extension("share.json");
    assert!(!read(&state).contains("mallory"), "no key was made");

    // A share-group member gets past the check (here to the share's own answer: no `expose`).
    run(&["usermod", "-aG", acct.groups[1], acct.user]);
    std::fs::write(&rig.config, format!("{cfg}allow-group {}\nshare-group {}\n", acct.groups[0], acct.groups[1]))
        .unwrap();
    Topology::wait_until("the share-group to apply", Duration::from_secs(5), || {
        let a = as_user(&[ADD]);
        code(&a[0]) == "invalid_argument" && a[0]["error"]["message"].as_str().unwrap_or("").contains("expose")
    })
    .unwrap_or_else(|e| panic!("{e}: {:?}", as_user(&[ADD])));
    // Root always may.
    let out = std::process::Command::new(bin("dockroute-helper"))
        .args(["share", "add", "mallory", "--socket", &sock])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("not authorised"), "{err}");
    drop(acct);
}
