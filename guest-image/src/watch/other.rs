//! No change notifications off Linux: opening either says so, and the agent polls.

use std::io;
use std::path::Path;

fn unsupported() -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, "change notifications need Linux")
}

pub struct ConfigDirWatch;

impl ConfigDirWatch {
    pub fn open(_dir: &Path) -> io::Result<ConfigDirWatch> {
        Err(unsupported())
    }

    pub async fn changed(&self) -> io::Result<()> {
        std::future::pending().await
    }
}

pub struct RulesetChanges;

impl RulesetChanges {
    pub fn open() -> io::Result<RulesetChanges> {
        Err(unsupported())
    }

    pub async fn changed(&self) -> io::Result<()> {
        std::future::pending().await
    }
}
