//! The hosts file of `--hosts` and `harness hosts check`: one `[[host]]` table per machine.
//!
//! ```toml
//! ssh_config = "ssh_config"   # optional: passed to ssh as -F (default: the user's ~/.ssh/config)
//!
//! [[host]]
//! address = "10.0.0.11"       # required: a name or an address
//! port = 22                   # default 22
//! user = "admin"              # default: the ssh config's
//! key = "~/.ssh/jepsen"       # a private key (default: the ssh config's and the agent's)
//! sudo = true                 # run privileged commands (nft) through passwordless sudo
//! name = "db1"                # default n1, n2, ... in file order
//! ```
//!
//! Relative paths are relative to the hosts file's folder. Every problem is reported as
//! `FILE:LINE:COL: what is wrong`.

use serde::Deserialize;
use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// One machine a node runs on.
#[derive(Clone, Debug, PartialEq)]
pub struct HostSpec {
    pub name: String,
    pub address: String,
    pub port: u16,
    pub user: Option<String>,
    pub key: Option<PathBuf>,
    pub sudo: bool,
}

/// A parsed hosts file.
#[derive(Clone, Debug, PartialEq)]
pub struct HostsFile {
    pub path: PathBuf,
    pub ssh_config: Option<PathBuf>,
    pub hosts: Vec<HostSpec>,
}

/// A problem in a hosts file, with its line and column when known.
#[derive(Clone, Debug, PartialEq)]
pub struct HostsFileError {
    pub file: PathBuf,
    pub line_col: Option<(usize, usize)>,
    pub message: String,
}

impl fmt::Display for HostsFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some((l, c)) = self.line_col {
            write!(f, ":{l}:{c}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for HostsFileError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    ssh_config: Option<String>,
    #[serde(default)]
    host: Vec<Spanned<RawHost>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHost {
    address: Spanned<String>,
    #[serde(default = "default_port")]
    port: u16,
    user: Option<String>,
    key: Option<String>,
    #[serde(default)]
    sudo: bool,
    name: Option<Spanned<String>>,
}

fn default_port() -> u16 {
    22
}

/// Reads and parses a hosts file.
pub fn load(path: &Path) -> Result<HostsFile, HostsFileError> {
    let text = std::fs::read_to_string(path).map_err(|e| HostsFileError {
        file: path.to_path_buf(),
        line_col: None,
        message: format!("cannot read the hosts file: {e}"),
    })?;
    parse(&text, path)
}

/// Parses hosts-file text; `path` names the file in errors and anchors relative paths.
pub fn parse(text: &str, path: &Path) -> Result<HostsFile, HostsFileError> {
    let err = |offset: Option<usize>, message: String| HostsFileError {
        file: path.to_path_buf(),
        line_col: offset.map(|o| line_col(text, o)),
        message,
    };
    let raw: Raw = toml::from_str(text)
        .map_err(|e| err(e.span().map(|s| s.start), e.message().trim().to_string()))?;
    if raw.host.is_empty() {
        return Err(err(
            None,
            "no [[host]] tables: the file lists no hosts".into(),
        ));
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut names = BTreeSet::new();
    let mut hosts = Vec::new();
    for (i, h) in raw.host.iter().enumerate() {
        let at = h.span().start;
        let h = h.get_ref();
        let name = match &h.name {
            Some(n) => {
                check_name(n.get_ref()).map_err(|m| err(Some(n.span().start), m))?;
                n.get_ref().clone()
            }
            None => format!("n{}", i + 1),
        };
        if !names.insert(name.clone()) {
            return Err(err(Some(at), format!("two hosts are named {name:?}")));
        }
        let address = h.address.get_ref().trim();
        if address.is_empty() || address.contains(char::is_whitespace) {
            return Err(err(
                Some(h.address.span().start),
                format!("host {name}: `address` {address:?} is not a host name or address"),
            ));
        }
        hosts.push(HostSpec {
            name,
            address: address.to_string(),
            port: h.port,
            user: h.user.clone(),
            key: h.key.as_deref().map(|k| resolve(dir, k)),
            sudo: h.sudo,
        });
    }
    Ok(HostsFile {
        path: path.to_path_buf(),
        ssh_config: raw.ssh_config.as_deref().map(|c| resolve(dir, c)),
        hosts,
    })
}

/// `~/x` from $HOME, `x` from the hosts file's folder, absolute paths as they are.
fn resolve(dir: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return PathBuf::from(home).join(rest);
        }
    }
    dir.join(p)
}

/// Names become folder and node names: keep them plain.
fn check_name(n: &str) -> Result<(), String> {
    let ok = !n.is_empty()
        && n.len() <= 32
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "host name {n:?}: use 1 to 32 letters, digits, '-' or '_'"
        ))
    }
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<HostsFile, HostsFileError> {
        parse(text, Path::new("/etc/jr/hosts.toml"))
    }

    fn err(text: &str) -> String {
        p(text).unwrap_err().to_string()
    }

    #[test]
    fn defaults_and_overrides() {
        let f = p(r#"
ssh_config = "cfg"
[[host]]
address = "10.0.0.1"
[[host]]
address = "db2.example"
port = 2222
user = "admin"
key = "keys/id"
sudo = true
name = "db2"
"#)
        .unwrap();
        assert_eq!(f.ssh_config, Some(PathBuf::from("/etc/jr/cfg")));
        assert_eq!(
            f.hosts[0],
            HostSpec {
                name: "n1".into(),
                address: "10.0.0.1".into(),
                port: 22,
                user: None,
                key: None,
                sudo: false,
            }
        );
        let h = &f.hosts[1];
        assert_eq!((h.name.as_str(), h.port, h.sudo), ("db2", 2222, true));
        assert_eq!(h.user.as_deref(), Some("admin"));
        assert_eq!(h.key, Some(PathBuf::from("/etc/jr/keys/id")));
    }

    #[test]
    fn unknown_keys_name_file_line_and_key() {
        let e = err("[[host]]\naddress = \"a\"\n\n[[host]]\naddress = \"b\"\nsudoo = true\n");
        assert!(e.starts_with("/etc/jr/hosts.toml:6:1: "), "{e}");
        assert!(e.contains("unknown field `sudoo`"), "{e}");
        let e = err("hostz = 1\n[[host]]\naddress = \"a\"\n");
        assert!(e.starts_with("/etc/jr/hosts.toml:1:1: "), "{e}");
        assert!(e.contains("`hostz`"), "{e}");
    }

    #[test]
    fn bad_values_are_located() {
        let e = err("[[host]]\naddress = \"a\"\nport = 70000\n");
        assert!(e.starts_with("/etc/jr/hosts.toml:3:"), "{e}");
        let e = err("[[host]]\nport = 22\n");
        assert!(e.contains("missing field `address`"), "{e}");
        assert!(e.starts_with("/etc/jr/hosts.toml:1:"), "{e}");
        let e = err("[[host]]\naddress = \"a b\"\n");
        assert!(e.starts_with("/etc/jr/hosts.toml:2:11: host n1:"), "{e}");
        let e = err("[[host]]\naddress = \"a\"\nname = \"x/y\"\n");
        assert!(e.starts_with("/etc/jr/hosts.toml:3:8: "), "{e}");
        let e = err("[[host]]\naddress = \"a\"\n[[host]]\naddress = \"b\"\nname = \"n1\"\n");
        assert!(e.contains("two hosts are named \"n1\""), "{e}");
        assert!(err("").contains("no [[host]] tables"));
        assert!(err("[[host]\n").starts_with("/etc/jr/hosts.toml:1:"));
    }
}
