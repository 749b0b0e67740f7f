//! Replication of a Main's data directory to a Backup. The Main publishes a manifest (relative
//! path, size, SHA-256 and mode of every regular file; every directory with its mode; every
//! symbolic link with its target); the Backup copies into a fresh generation directory,
//! reusing unchanged files from its current replica and streaming only changed ones to disk,
//! verifies every checksum, recreates directories, modes and links (a link is never followed,
//! on either side), fsyncs the generation, and then switches the `current` symlink atomically;
//! older generations are removed only after the switch. A failed or interrupted transfer leaves
//! the previous replica untouched. A name that cannot be replicated (not UTF-8, or not a file,
//! directory or link) fails the copy with its name. The same copy runs the other way in a
//! replace takeover: the Main's new server fetches the acting Backup's replica ([`Source`])
//! into its empty `data_dir` ([`restore_into`]). Does file and network I/O.

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
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
    #[error("{0}: not a regular file, directory or symbolic link; cannot be replicated")]
    Unsupported(String),
    #[error("{0}: is or passes through a symbolic link; not followed")]
    ThroughSymlink(String),
    #[error(
        "not enough free space in {path}: the copy needs {needed} bytes, {available} are free"
    )]
    NoSpace {
        path: PathBuf,
        needed: u64,
        available: u64,
    },
    #[error("{0} is taken over: the replica its Backup acts from is not replaced")]
    TakenOver(String),
    #[error(
        "{0} is not empty: a replace takeover copies the Backup's data into an empty data_dir \
         (a new server's); move its contents away first (or, on the Main's own server, use a \
         reverse takeover)"
    )]
    NotEmpty(PathBuf),
    #[error("{path}: the Main sent {got} bytes, the manifest says {expected}")]
    Size {
        path: String,
        expected: u64,
        got: u64,
    },
}

/// One regular file of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    /// Permission bits (`0o7777`); absent in the manifests of older Mains (left as created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// One directory of a manifest (so empty directories and directory modes travel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirEntry {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<u32>,
}

/// One symbolic link of a manifest: replicated as a link with the same target, never followed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkEntry {
    pub path: String,
    pub target: String,
}

/// What a Main publishes. `dirs` and `symlinks` are absent in older Mains' manifests and
/// ignored by older Backups, so the peer protocol's version is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub files: Vec<FileEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dirs: Vec<DirEntry>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symlinks: Vec<LinkEntry>,
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

fn sha256_of(mut f: impl Read, path: &Path) -> Result<String, ReplicationError> {
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

fn mode_of(meta: &fs::Metadata) -> u32 {
    meta.permissions().mode() & 0o7777
}

/// Builds the manifest of `dir` (files, directories and symbolic links, each sorted by path),
/// never following a link. A name that is not UTF-8, or an entry of another kind (socket,
/// FIFO, device), is an error naming it. Blocking.
pub fn manifest(dir: &Path) -> Result<Manifest, ReplicationError> {
    let mut m = Manifest {
        files: Vec::new(),
        dirs: Vec::new(),
        symlinks: Vec::new(),
    };
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        for entry in fs::read_dir(&abs).map_err(io(&abs))? {
            let entry = entry.map_err(io(&abs))?;
            let rel = rel.join(entry.file_name());
            let name = utf8_name(&rel)?.to_string();
            let path = dir.join(&rel);
            // symlink_metadata: the entry itself, never what a link points at.
            let meta = fs::symlink_metadata(&path).map_err(io(&path))?;
            let ty = meta.file_type();
            if ty.is_dir() {
                m.dirs.push(DirEntry {
                    path: name,
                    mode: Some(mode_of(&meta)),
                });
                stack.push(rel);
            } else if ty.is_symlink() {
                let target = fs::read_link(&path).map_err(io(&path))?;
                let target = target.to_str().ok_or_else(|| {
                    ReplicationError::BadName(format!("{name} -> {}", target.to_string_lossy()))
                })?;
                m.symlinks.push(LinkEntry {
                    path: name,
                    target: target.to_string(),
                });
            } else if ty.is_file() {
                let (file, size) = open_published(dir, &name)?;
                m.files.push(FileEntry {
                    path: name,
                    size,
                    sha256: sha256_of(file, &path)?,
                    mode: Some(mode_of(&meta)),
                });
            } else {
                return Err(ReplicationError::Unsupported(name));
            }
        }
    }
    m.files.sort_by(|a, b| a.path.cmp(&b.path));
    m.dirs.sort_by(|a, b| a.path.cmp(&b.path));
    m.symlinks.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(m)
}

/// Opens the regular file `rel` under `dir` for reading, refusing a path that leaves `dir`,
/// or that is or passes through a symbolic link (checked on every component, and the opened
/// file checked to be the one looked at). Returns the file and its size. Blocking.
pub fn open_published(dir: &Path, rel: &str) -> Result<(fs::File, u64), ReplicationError> {
    let relative = safe_relative(rel)?;
    let mut path = dir.to_path_buf();
    let mut meta = None;
    for part in relative.components() {
        if let Some(m) = &meta {
            if !fs::Metadata::is_dir(m) {
                return Err(ReplicationError::UnsafePath(rel.to_string()));
            }
        }
        path.push(part);
        let m = fs::symlink_metadata(&path).map_err(io(&path))?;
        if m.file_type().is_symlink() {
            return Err(ReplicationError::ThroughSymlink(rel.to_string()));
        }
        meta = Some(m);
    }
    let Some(meta) = meta.filter(|m| m.file_type().is_file()) else {
        return Err(ReplicationError::Unsupported(rel.to_string()));
    };
    let file = fs::File::open(&path).map_err(io(&path))?;
    let opened = file.metadata().map_err(io(&path))?;
    if opened.dev() != meta.dev() || opened.ino() != meta.ino() {
        return Err(ReplicationError::ThroughSymlink(rel.to_string()));
    }
    Ok((file, opened.len()))
}

/// Where a Backup keeps the replica of one Main: `<root>/<main>/current` (a symlink to the
/// newest complete generation).
pub fn current_dir(root: &Path, main: &str) -> PathBuf {
    root.join(main).join("current")
}

/// A complete, verified and fsynced generation, not yet the replica: [`Prepared::switch`]
/// makes it `current`, dropping it without switching removes it.
#[derive(Debug)]
pub struct Prepared {
    base: PathBuf,
    generation: PathBuf,
    pub stats: Stats,
    switched: bool,
}

impl Prepared {
    /// Points `current` at this generation (one rename, then the directory fsynced). Older
    /// generations stay until [`Switched::remove_older`].
    pub fn switch(mut self) -> Result<Switched, ReplicationError> {
        point_current(&self.base, &self.generation)?;
        self.switched = true;
        Ok(Switched {
            base: self.base.clone(),
            generation: self.generation.clone(),
            stats: self.stats,
        })
    }
}

/// A generation that is `current`; the older ones are still on disk.
#[derive(Debug)]
pub struct Switched {
    base: PathBuf,
    generation: PathBuf,
    pub stats: Stats,
}

impl Switched {
    /// Removes the generations older than `current` (blocking; outside any lock).
    pub fn remove_older(self) -> Stats {
        remove_older(&self.base, &self.generation);
        self.stats
    }
}

impl Drop for Prepared {
    fn drop(&mut self) {
        if !self.switched {
            let _ = remove_generation(&self.generation);
        }
    }
}

/// Removes a generation, even one whose directory modes forbid writing.
fn remove_generation(generation: &Path) -> std::io::Result<()> {
    let mut stack = vec![generation.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(meta) = fs::symlink_metadata(&d) else {
            continue;
        };
        if meta.is_dir() {
            let _ = fs::set_permissions(&d, fs::Permissions::from_mode(0o700));
            if let Ok(entries) = fs::read_dir(&d) {
                stack.extend(entries.flatten().map(|e| e.path()));
            }
        }
    }
    fs::remove_dir_all(generation)
}

/// Where a copy reads from: a peer, and the resource under `/peer/v1/` that lists
/// (`<resource>/manifest`) and serves (`<resource>/file/<path>`) the data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    pub peer: String,
    pub resource: String,
}

impl Source {
    /// What `peer` publishes (a Main's data for its Backups).
    pub fn published(peer: &str) -> Source {
        Source {
            peer: peer.to_string(),
            resource: "replication".into(),
        }
    }

    /// `peer`'s replica of `main` (a replace takeover's copy back from the Backup).
    pub fn replica(peer: &str, main: &str) -> Source {
        Source {
            peer: peer.to_string(),
            resource: format!("replication/replica/{}", url_path(main)),
        }
    }
}

/// Copies `main`'s published data into `root/<main>` and switches to it.
pub async fn replicate(
    peers: &PeerClient,
    main: &str,
    root: &Path,
    now_ms: u64,
) -> Result<Stats, ReplicationError> {
    Ok(prepare(peers, main, root, now_ms)
        .await?
        .switch()?
        .remove_older())
}

/// Copies `main`'s published data into a new generation under `root/<main>`. Only files whose
/// checksum changed are transferred; the replica is unchanged until the result is switched.
pub async fn prepare(
    peers: &PeerClient,
    main: &str,
    root: &Path,
    now_ms: u64,
) -> Result<Prepared, ReplicationError> {
    prepare_in(peers, &Source::published(main), &root.join(main), now_ms).await
}

async fn fetch_manifest(peers: &PeerClient, src: &Source) -> Result<Manifest, ReplicationError> {
    let bytes = peers
        .fetch(&src.peer, &format!("{}/manifest", src.resource))
        .await?;
    serde_json::from_slice(&bytes).map_err(|e| ReplicationError::BadManifest {
        main: src.peer.clone(),
        message: e.to_string(),
    })
}

/// Copies what `src` serves into a new generation under `base` (whose `current` is reused
/// for unchanged files); the copy under `base` is unchanged until the result is switched.
pub async fn prepare_in(
    peers: &PeerClient,
    src: &Source,
    base: &Path,
    now_ms: u64,
) -> Result<Prepared, ReplicationError> {
    let manifest = fetch_manifest(peers, src).await?;
    let base = base.to_path_buf();
    fs::create_dir_all(&base).map_err(io(&base))?;
    let current = base.join("current");
    let generation = base.join(format!("gen-{now_ms}"));
    if fs::symlink_metadata(&generation).is_ok() {
        remove_generation(&generation).map_err(io(&generation))?;
    }
    check_space(&base, &manifest)?;
    let mut prepared = Prepared {
        base,
        generation,
        stats: Stats::default(),
        switched: false,
    };
    prepared.stats = fill_generation(peers, src, &manifest, &current, &prepared.generation).await?;
    Ok(prepared)
}

/// A replace takeover's last copy: what `src` serves, written straight into `target` (the new
/// server's `data_dir`, which may be a mount point, so nothing is renamed onto it), which must
/// exist and be empty; unchanged files are taken from `staged` (an earlier copy of the same
/// source, see [`prepare_in`]). Every file and directory is fsynced before it returns. A copy
/// that fails removes what it wrote, leaving `target` empty again.
pub async fn restore_into(
    peers: &PeerClient,
    src: &Source,
    staged: &Path,
    target: &Path,
) -> Result<Stats, ReplicationError> {
    // The data_dir itself may be a link (to a mount, say): followed, as a Main publishes it.
    let meta = fs::metadata(target).map_err(io(target))?;
    if !meta.is_dir() {
        return Err(ReplicationError::Unsupported(
            target.to_string_lossy().into_owned(),
        ));
    }
    if fs::read_dir(target).map_err(io(target))?.next().is_some() {
        return Err(ReplicationError::NotEmpty(target.to_path_buf()));
    }
    let manifest = fetch_manifest(peers, src).await?;
    check_space(target, &manifest)?;
    let res = fill_generation(peers, src, &manifest, staged, target).await;
    if res.is_err() {
        empty_dir(target);
    }
    res
}

/// Removes everything inside `dir` (not `dir` itself), even under read-only directory modes.
fn empty_dir(dir: &Path) {
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => {
                    let _ = remove_generation(&path);
                }
                _ => {
                    let _ = fs::remove_file(&path);
                }
            }
        }
    }
}

/// Every file of the new generation is written anew (unchanged ones copied from the current
/// replica): the file system must have room for all of them (plus 4 KiB per entry and 1 MiB),
/// checked before anything is written.
fn check_space(base: &Path, manifest: &Manifest) -> Result<(), ReplicationError> {
    let entries = (manifest.files.len() + manifest.dirs.len() + manifest.symlinks.len()) as u64;
    let needed = manifest
        .files
        .iter()
        .fold(0u64, |n, f| n.saturating_add(f.size))
        .saturating_add(entries.saturating_mul(4096))
        .saturating_add(1 << 20);
    let st = nix::sys::statvfs::statvfs(base).map_err(|e| ReplicationError::Io {
        path: base.to_path_buf(),
        source: std::io::Error::from(e),
    })?;
    #[allow(clippy::useless_conversion)]
    let available = u64::from(st.blocks_available()).saturating_mul(u64::from(st.fragment_size()));
    if available < needed {
        return Err(ReplicationError::NoSpace {
            path: base.to_path_buf(),
            needed,
            available,
        });
    }
    Ok(())
}

/// Creates the directories of `rel` under `root` that are missing, refusing any component
/// that exists as something other than a directory (a link is never followed).
fn real_dirs(root: &Path, rel: &Path) -> Result<(), ReplicationError> {
    let mut path = root.to_path_buf();
    for part in rel.components() {
        path.push(part);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => {
                return Err(ReplicationError::ThroughSymlink(
                    rel.to_string_lossy().into_owned(),
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                fs::create_dir(&path).map_err(io(&path))?;
            }
            Err(e) => return Err(io(&path)(e)),
        }
    }
    Ok(())
}

/// Opens a new file (never an existing one, never through a link) in the generation.
fn create_in(generation: &Path, rel: &Path) -> Result<(fs::File, PathBuf), ReplicationError> {
    if let Some(parent) = rel.parent() {
        real_dirs(generation, parent)?;
    }
    let target = generation.join(rel);
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)
        .map_err(io(&target))?;
    Ok((file, target))
}

async fn fill_generation(
    peers: &PeerClient,
    src: &Source,
    manifest: &Manifest,
    current: &Path,
    generation: &Path,
) -> Result<Stats, ReplicationError> {
    let mut stats = Stats {
        files: manifest.files.len(),
        ..Stats::default()
    };
    fs::create_dir_all(generation).map_err(io(generation))?;
    for d in &manifest.dirs {
        real_dirs(generation, &safe_relative(&d.path)?)?;
    }
    for entry in &manifest.files {
        let rel = safe_relative(&entry.path)?;
        // The current replica's copy, if it is a regular file reached without links and its
        // content is the same.
        let reusable = match open_published(current, &entry.path) {
            Ok((f, size)) if size == entry.size => {
                sha256_of(f, &current.join(&rel))? == entry.sha256
            }
            _ => false,
        };
        let (mut out, target) = create_in(generation, &rel)?;
        if reusable {
            let (mut f, _) = open_published(current, &entry.path)?;
            std::io::copy(&mut f, &mut out).map_err(io(&target))?;
        } else {
            let got = fetch_into(peers, src, entry, &mut out, &target).await?;
            stats.fetched += 1;
            stats.bytes_fetched += got;
        }
        if let Some(mode) = entry.mode {
            out.set_permissions(fs::Permissions::from_mode(mode & 0o7777))
                .map_err(io(&target))?;
        }
        out.sync_all().map_err(io(&target))?;
    }
    // Links last: no file is ever written through one.
    for l in &manifest.symlinks {
        let rel = safe_relative(&l.path)?;
        if let Some(parent) = rel.parent() {
            real_dirs(generation, parent)?;
        }
        let target = generation.join(&rel);
        std::os::unix::fs::symlink(&l.target, &target).map_err(io(&target))?;
    }
    sync_dirs(generation)?;
    // Directory modes last (deepest first): a read-only directory was filled before.
    for d in manifest.dirs.iter().rev() {
        if let Some(mode) = d.mode {
            let path = generation.join(safe_relative(&d.path)?);
            fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o7777))
                .map_err(io(&path))?;
            if let Ok(dir) = fs::File::open(&path) {
                let _ = dir.sync_all();
            }
        }
    }
    Ok(stats)
}

/// Streams one file from the Main into `out`, hashing as it goes (bounded memory); checks
/// size and checksum. Returns the bytes transferred.
async fn fetch_into(
    peers: &PeerClient,
    src: &Source,
    entry: &FileEntry,
    out: &mut fs::File,
    target: &Path,
) -> Result<u64, ReplicationError> {
    let route = format!("{}/file/{}", src.resource, url_path(&entry.path));
    let main = src.peer.as_str();
    let mut resp = peers.fetch_response(main, &route).await?;
    let mut h = Sha256::new();
    let mut got: u64 = 0;
    loop {
        let chunk = resp.chunk().await.map_err(|e| PeerError::Unreachable {
            member: main.to_string(),
            detail: format!("{}: {e}", entry.path),
        })?;
        let Some(chunk) = chunk else { break };
        got += chunk.len() as u64;
        if got > entry.size {
            return Err(ReplicationError::Size {
                path: entry.path.clone(),
                expected: entry.size,
                got,
            });
        }
        h.update(&chunk);
        out.write_all(&chunk).map_err(io(target))?;
    }
    let sha = hex::encode(h.finalize());
    if sha != entry.sha256 || got != entry.size {
        return Err(ReplicationError::Checksum {
            path: entry.path.clone(),
            expected: entry.sha256.clone(),
            got: sha,
        });
    }
    Ok(got)
}

/// fsyncs every directory of the tree at `root` (never through a link).
fn sync_dirs(root: &Path) -> Result<(), ReplicationError> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).map_err(io(&d))? {
            let entry = entry.map_err(io(&d))?;
            if entry.file_type().map_err(io(&d))?.is_dir() {
                stack.push(entry.path());
            }
        }
        fs::File::open(&d)
            .and_then(|f| f.sync_all())
            .map_err(io(&d))?;
    }
    Ok(())
}

/// Points `base/current` at `generation` with one rename, fsyncs `base`, and only then removes
/// older generations.
#[cfg(test)]
fn switch_current(base: &Path, generation: &Path) -> Result<(), ReplicationError> {
    point_current(base, generation)?;
    remove_older(base, generation);
    Ok(())
}

/// Points `base/current` at `generation` with one rename and fsyncs `base`.
fn point_current(base: &Path, generation: &Path) -> Result<(), ReplicationError> {
    let link = base.join("current");
    let tmp = base.join("current.tmp");
    let _ = fs::remove_file(&tmp);
    let target = generation
        .file_name()
        .map(PathBuf::from)
        .unwrap_or_else(|| generation.to_path_buf());
    std::os::unix::fs::symlink(&target, &tmp).map_err(io(&tmp))?;
    fs::rename(&tmp, &link).map_err(io(&link))?;
    fs::File::open(base)
        .and_then(|dir| dir.sync_all())
        .map_err(io(base))
}

/// Removes every generation in `base` but `generation` (the current one).
fn remove_older(base: &Path, generation: &Path) {
    let Ok(entries) = fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let keep = Some(name.as_os_str()) == generation.file_name();
        if !keep && name.to_string_lossy().starts_with("gen-") {
            let _ = remove_generation(&entry.path());
        }
    }
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

    #[test]
    fn manifest_keeps_links_as_links_and_lists_directories_with_modes() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("empty")).expect("mkdir");
        fs::write(dir.path().join("key"), b"k").expect("write");
        fs::set_permissions(dir.path().join("key"), fs::Permissions::from_mode(0o600))
            .expect("chmod");
        symlink("/etc/passwd", dir.path().join("out")).expect("symlink");
        symlink("/etc", dir.path().join("etc")).expect("symlink");
        let m = manifest(dir.path()).expect("manifest");
        assert_eq!(m.files.len(), 1, "{m:?}");
        assert_eq!(m.files[0].mode, Some(0o600));
        assert_eq!(m.dirs.len(), 1, "{m:?}");
        assert_eq!(m.dirs[0].path, "empty");
        let links: Vec<(&str, &str)> = m
            .symlinks
            .iter()
            .map(|l| (l.path.as_str(), l.target.as_str()))
            .collect();
        assert_eq!(links, [("etc", "/etc"), ("out", "/etc/passwd")]);
        for rel in ["out", "etc/passwd", "empty"] {
            assert!(open_published(dir.path(), rel).is_err(), "{rel}");
        }
        assert!(open_published(dir.path(), "key").is_ok());
    }

    #[test]
    fn an_older_manifest_still_reads() {
        let m: Manifest =
            serde_json::from_str(r#"{"files":[{"path":"a","size":1,"sha256":"00"}]}"#)
                .expect("old manifest");
        assert_eq!(m.files[0].mode, None);
        assert!(m.dirs.is_empty() && m.symlinks.is_empty());
    }

    #[test]
    fn the_switch_keeps_the_new_generation_and_removes_older_ones_after() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path();
        fs::create_dir_all(base.join("gen-1/ro")).expect("mkdir");
        switch_current(base, &base.join("gen-1")).expect("first switch");
        // A generation whose directory is read-only (replicated modes) is removed all the same.
        fs::write(base.join("gen-1/ro/f"), b"x").expect("write");
        fs::set_permissions(base.join("gen-1/ro"), fs::Permissions::from_mode(0o500))
            .expect("chmod");
        fs::create_dir_all(base.join("gen-2/ro")).expect("mkdir");
        // Until the switch, the previous generation is the replica.
        assert!(base.join("current/ro/f").is_file());
        switch_current(base, &base.join("gen-2")).expect("switch");
        assert_eq!(
            fs::read_link(base.join("current")).ok(),
            Some(PathBuf::from("gen-2"))
        );
        assert!(!base.join("gen-1").exists());
        assert!(base.join("current/ro").is_dir());
    }
}
