//! Replication of a Main's data directory to a Backup. The Main publishes a manifest (relative
//! path, size, SHA-256 of every regular file); the Backup copies into a fresh generation
//! directory, reusing unchanged files from its current replica and fetching only changed ones,
//! verifies every checksum, and then switches the `current` symlink atomically. A failed or
//! interrupted transfer leaves the previous replica untouched. Does file and network I/O.

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::peer::{PeerClient, PeerError};

#[derive(Debug, thiserror::Error)]
pub enum ReplicationError {
    #[error("{0}")]
    Peer(#[from] PeerError),
    #[error("the manifest from {main} is unreadable: {message}")]
    BadManifest { main: String, message: String },
    #[error("{path}: checksum mismatch (expected {expected}, got {got})")]
    Checksum {
        path: String,
        expected: String,
        got: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("unsafe path in manifest: {0:?}")]
    UnsafePath(String),
    #[error("{0}: the name is not UTF-8 and cannot be replicated")]
    BadName(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub files: Vec<FileEntry>,
}

/// What one replication did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub files: usize,
    pub fetched: usize,
    pub bytes_fetched: u64,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ReplicationError + '_ {
    move |source| ReplicationError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A manifest path must stay inside the directory: relative, no `..`, no root.
pub fn safe_relative(path: &str) -> Result<PathBuf, ReplicationError> {
    let p = Path::new(path);
    if path.is_empty() || !p.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(ReplicationError::UnsafePath(path.to_string()));
    }
    Ok(p.to_path_buf())
}

fn sha256_file(path: &Path) -> Result<String, ReplicationError> {
    let mut f = fs::File::open(path).map_err(io(path))?;
    let mut h = Sha256::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// A relative path as UTF-8, or an error naming it (lossily) when it is not.
fn utf8_name(rel: &Path) -> Result<&str, ReplicationError> {
    rel.to_str()
        .ok_or_else(|| ReplicationError::BadName(rel.to_string_lossy().into_owned()))
}

/// `rel` as a URL path: every segment percent-encoded (all but RFC 3986's unreserved
/// characters), so `?`, `#`, `%`, `\` and spaces travel as part of the name.
pub fn url_path(rel: &str) -> String {
    let mut out = String::with_capacity(rel.len());
    for (i, segment) in rel.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        for b in segment.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(char::from(b));
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// Builds the manifest of `dir` (regular files only, sorted by path). Blocking.
pub fn manifest(dir: &Path) -> Result<Manifest, ReplicationError> {
    let mut files = Vec::new();
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        for entry in fs::read_dir(&abs).map_err(io(&abs))? {
            let entry = entry.map_err(io(&abs))?;
            let ty = entry.file_type().map_err(io(&abs))?;
            let rel = rel.join(entry.file_name());
            if ty.is_dir() {
                stack.push(rel);
            } else if ty.is_file() {
                let path = dir.join(&rel);
                let size = entry.metadata().map_err(io(&path))?.len();
                let name = utf8_name(&rel)?;
                files.push(FileEntry {
                    path: name.to_string(),
                    size,
                    sha256: sha256_file(&path)?,
                });
            }
        }
    }
    files.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(Manifest { files })
}

/// Reads one published file for a peer, refusing paths that leave `dir`. Blocking.
pub fn read_published(dir: &Path, rel: &str) -> Result<Vec<u8>, ReplicationError> {
    let path = dir.join(safe_relative(rel)?);
    fs::read(&path).map_err(io(&path))
}

/// Where a Backup keeps the replica of one Main: `<root>/<main>/current` (a symlink to the
/// newest complete generation).
pub fn current_dir(root: &Path, main: &str) -> PathBuf {
    root.join(main).join("current")
}

/// Copies `main`'s published data into `root/<main>`. Only files whose checksum changed are
/// transferred; the new generation replaces the old one only when it is complete and verified.
pub async fn replicate(
    peers: &PeerClient,
    main: &str,
    root: &Path,
    now_ms: u64,
) -> Result<Stats, ReplicationError> {
    let bytes = peers.fetch(main, "replication/manifest").await?;
    let manifest: Manifest =
        serde_json::from_slice(&bytes).map_err(|e| ReplicationError::BadManifest {
            main: main.to_string(),
            message: e.to_string(),
        })?;
    let base = root.join(main);
    fs::create_dir_all(&base).map_err(io(&base))?;
    let current = current_dir(root, main);
    let generation = base.join(format!("gen-{now_ms}"));
    if generation.exists() {
        fs::remove_dir_all(&generation).map_err(io(&generation))?;
    }
    let result = fill_generation(peers, main, &manifest, &current, &generation).await;
    match result {
        Ok(stats) => {
            switch_current(&base, &generation)?;
            Ok(stats)
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&generation);
            Err(e)
        }
    }
}

async fn fill_generation(
    peers: &PeerClient,
    main: &str,
    manifest: &Manifest,
    current: &Path,
    generation: &Path,
) -> Result<Stats, ReplicationError> {
    let mut stats = Stats {
        files: manifest.files.len(),
        ..Stats::default()
    };
    fs::create_dir_all(generation).map_err(io(generation))?;
    for entry in &manifest.files {
        let rel = safe_relative(&entry.path)?;
        let target = generation.join(&rel);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let old = current.join(&rel);
        let unchanged = old.is_file() && sha256_file(&old)? == entry.sha256;
        if unchanged {
            fs::copy(&old, &target).map_err(io(&target))?;
            continue;
        }
        let data = peers
            .fetch(main, &format!("replication/file/{}", url_path(&entry.path)))
            .await?;
        let got = hex::encode(Sha256::digest(&data));
        if got != entry.sha256 || data.len() as u64 != entry.size {
            return Err(ReplicationError::Checksum {
                path: entry.path.clone(),
                expected: entry.sha256.clone(),
                got,
            });
        }
        fs::write(&target, &data).map_err(io(&target))?;
        stats.fetched += 1;
        stats.bytes_fetched += data.len() as u64;
    }
    Ok(stats)
}

/// Points `base/current` at `generation` with one rename, then removes older generations.
fn switch_current(base: &Path, generation: &Path) -> Result<(), ReplicationError> {
    let link = base.join("current");
    let tmp = base.join("current.tmp");
    let _ = fs::remove_file(&tmp);
    let target = generation
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| generation.to_path_buf());
    std::os::unix::fs::symlink(&target, &tmp).map_err(io(&tmp))?;
    fs::rename(&tmp, &link).map_err(io(&link))?;
    if let Ok(dir) = fs::File::open(base) {
        let _ = dir.sync_all();
    }
    for entry in fs::read_dir(base).map_err(io(base))?.flatten() {
        let name = entry.file_name();
        let keep = Some(name.as_os_str()) == generation.file_name();
        if !keep && name.to_string_lossy().starts_with("gen-") {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_lists_files_with_checksums() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("sub")).expect("mkdir");
        fs::write(dir.path().join("a.txt"), b"abc").expect("write");
        fs::write(dir.path().join("sub/b.txt"), b"").expect("write");
        let m = manifest(dir.path()).expect("manifest");
        assert_eq!(m.files.len(), 2);
        assert_eq!(m.files[0].path, "a.txt");
        assert_eq!(
            m.files[0].sha256,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(m.files[1].path, "sub/b.txt");
        assert_eq!(m.files[1].size, 0);
    }

    #[test]
    fn refuses_paths_leaving_the_directory() {
        for bad in ["../etc/passwd", "/etc/passwd", "a/../../b", ""] {
            assert!(safe_relative(bad).is_err(), "{bad}");
        }
        assert!(safe_relative("a/b.txt").is_ok());
    }

    #[test]
    fn url_paths_escape_every_reserved_character() {
        assert_eq!(url_path("a b/c?d#e%f\\g"), "a%20b/c%3Fd%23e%25f%5Cg");
        assert_eq!(url_path("ü.txt"), "%C3%BC.txt");
        assert_eq!(url_path("plain-name_1.~"), "plain-name_1.~");
    }
}
