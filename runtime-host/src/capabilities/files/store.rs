//! Tenant file storage on a local directory: `<root>/<tenant>/<agent>/<name>`.
//!
//! Every path below the root is walked one component at a time with
//! `openat(…, O_NOFOLLOW)`, so a symbolic link anywhere under the root
//! (planted by anyone with access to the directory) is refused rather than
//! followed, and no name can resolve outside its scope's directory: names
//! are checked first ([`super::names`]), and the walk itself cannot climb.
//! Tenant and agent ids become directory names that cannot collide or
//! climb either ([`segment`]).

use super::names::{self, shown};
use dashmap::DashMap;
use rustix::fs::{AtFlags, Dir, FileType, Mode, OFlags};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Why the store refused or failed a request.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    /// The name (or prefix) breaks the naming rules.
    #[error("{0}")]
    Invalid(String),
    /// No such file in the scope's storage.
    #[error("{0}")]
    NotFound(String),
    /// A rule of the store refuses it: symbolic links, too many entries.
    #[error("{0}")]
    Denied(String),
    /// The file is over the per-file cap, or the tenant's files would be
    /// over the per-tenant cap.
    #[error("{0}")]
    TooLarge(String),
    /// The file system failed.
    #[error("the file store failed: {0}")]
    Io(#[from] std::io::Error),
}

/// How the operator configured file storage.
#[derive(Debug, Clone)]
pub struct FilesConfig {
    /// The directory every tenant's files live under.
    pub root: PathBuf,
    /// Most bytes of one file (writes and uploads beyond it are refused,
    /// reads of larger files too).
    pub max_file_bytes: u64,
    /// Most bytes one tenant may store, over all its agents.
    pub max_tenant_bytes: u64,
}

impl FilesConfig {
    /// Default cap per file: 32 MiB.
    pub const DEFAULT_MAX_FILE_BYTES: u64 = 32 << 20;
    /// Default cap per tenant: 1 GiB.
    pub const DEFAULT_MAX_TENANT_BYTES: u64 = 1 << 30;

    /// Storage under `root` with the default caps.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            max_file_bytes: Self::DEFAULT_MAX_FILE_BYTES,
            max_tenant_bytes: Self::DEFAULT_MAX_TENANT_BYTES,
        }
    }
}

/// Whose files a call reads or writes: the run's (or the API key's) tenant
/// and agent, never an id a guest supplies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilesScope {
    /// Tenant (buyer organisation).
    pub tenant: String,
    /// Agent.
    pub agent: String,
}

/// One stored file.
#[derive(Debug, Clone)]
pub struct StoredFile {
    /// Its name in the scope's storage.
    pub name: String,
    /// MIME type, from the name's extension.
    pub content_type: String,
    /// Its bytes.
    pub content: Vec<u8>,
}

/// A stored file opened for reading ([`FileStore::open_read`]).
#[derive(Debug)]
pub struct OpenedFile {
    /// The open file. A write renames a new file over the name, so this
    /// one keeps the bytes it had when it was opened.
    pub file: std::fs::File,
    /// Its length when it was opened: what a reader should read.
    pub bytes: u64,
}

/// The tenants' file storage: cheap to clone.
#[derive(Clone)]
pub struct FileStore {
    inner: Arc<Inner>,
}

struct Inner {
    config: FilesConfig,
    /// Each tenant's writes are serialised, so its cap cannot be raced
    /// past; one tenant's writes (each walks the tenant's files to sum
    /// them) never wait for another's.
    writing: DashMap<String, Arc<Mutex<()>>>,
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileStore").field("config", &self.inner.config).finish()
    }
}

/// Most entries one listing (or one tenant-size walk) visits, hidden
/// ones and ones planted beside the store included.
const MAX_ENTRIES: usize = 100_000;
/// Most files and directories one tenant may keep: a write that would
/// go past it is refused (deleting files makes room), so the tenant's
/// own walks stay under [`MAX_ENTRIES`].
pub const MAX_TENANT_ENTRIES: usize = 50_000;
/// Most names one listing returns.
pub const MAX_LISTED: usize = 10_000;
/// What a directory counts toward the tenant's cap: the block it takes
/// on disk. Without it, a tenant could fill the disk with empty
/// directories at no cost.
pub const DIRECTORY_BYTES: u64 = 4096;

/// One file a listing found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// Its name in the scope's storage.
    pub name: String,
    /// Its size.
    pub bytes: u64,
}

/// What the walk of a tenant's storage found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TenantUsage {
    /// Bytes counted toward the cap: the files' sizes and
    /// [`DIRECTORY_BYTES`] per directory.
    pub bytes: u64,
    /// Files and directories.
    pub entries: usize,
}

impl FileStore {
    /// Storage as `config` says, creating the root directory if needed.
    pub fn open(config: FilesConfig) -> Result<Self, FilesError> {
        std::fs::create_dir_all(&config.root)?;
        Ok(Self { inner: Arc::new(Inner { config, writing: DashMap::new() }) })
    }

    /// The configuration.
    pub fn config(&self) -> &FilesConfig {
        &self.inner.config
    }

    /// Reads file `name` of `scope`.
    pub fn read(&self, scope: &FilesScope, name: &str) -> Result<StoredFile, FilesError> {
        let opened = self.open_read(scope, name)?;
        let mut content = Vec::with_capacity(opened.bytes as usize);
        // The file may have grown since it was opened (a writer renames a
        // new file over the name, so only a hand outside the store can).
        opened.file.take(opened.bytes).read_to_end(&mut content)?;
        Ok(StoredFile { name: name.to_owned(), content_type: content_type(name).to_owned(), content })
    }

    /// Opens file `name` of `scope` for reading, as [`FileStore::read`]
    /// would read it, without reading it: for streaming it.
    pub fn open_read(&self, scope: &FilesScope, name: &str) -> Result<OpenedFile, FilesError> {
        let parts = names::components(name)?;
        let missing = || FilesError::NotFound(format!("there is no file `{}` in this agent's storage", shown(name)));
        let Some(dir) = self.scope_dir(scope)? else { return Err(missing()) };
        let (leaf, dirs) = parts.split_last().ok_or_else(missing)?;
        let Some(dir) = walk(dir, dirs, false, name)? else { return Err(missing()) };
        let fd = match rustix::fs::openat(
            &dir,
            *leaf,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOCTTY,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(rustix::io::Errno::NOENT) => return Err(missing()),
            Err(rustix::io::Errno::LOOP) => return Err(symlink(name)),
            Err(e) => return Err(FilesError::Io(e.into())),
        };
        let stat = rustix::fs::fstat(&fd).map_err(std::io::Error::from)?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(FilesError::Invalid(format!("`{}` is not a regular file", shown(name))));
        }
        let limit = self.inner.config.max_file_bytes;
        let bytes = stat.st_size as u64;
        if bytes > limit {
            return Err(FilesError::TooLarge(format!("`{}` is over the {limit}-byte limit per file", shown(name))));
        }
        Ok(OpenedFile { file: std::fs::File::from(fd), bytes })
    }

    /// Names of `scope`'s files that start with `prefix`, sorted.
    pub fn list(&self, scope: &FilesScope, prefix: &str) -> Result<Vec<String>, FilesError> {
        Ok(self.files(scope, prefix)?.into_iter().map(|f| f.name).collect())
    }

    /// `scope`'s files whose names start with `prefix`, with their sizes:
    /// the first [`MAX_LISTED`] by name.
    pub fn files(&self, scope: &FilesScope, prefix: &str) -> Result<Vec<ListedFile>, FilesError> {
        names::check_prefix(prefix)?;
        let Some(dir) = self.scope_dir(scope)? else { return Ok(Vec::new()) };
        let mut found = Vec::new();
        let mut visited = 0;
        let mut visit = |name: &str, entry: Entry| {
            if let Entry::File(bytes) = entry
                && name.starts_with(prefix)
            {
                found.push(ListedFile { name: name.to_owned(), bytes });
                // Kept to twice a listing's worth while walking.
                if found.len() >= 2 * MAX_LISTED {
                    found.sort_by(|a, b| a.name.cmp(&b.name));
                    found.truncate(MAX_LISTED);
                }
            }
        };
        collect(&dir, "", &mut visit, &mut visited, 0)?;
        // The first names in order, whatever order the directories gave.
        found.sort_by(|a, b| a.name.cmp(&b.name));
        found.truncate(MAX_LISTED);
        Ok(found)
    }

    /// Writes `content` as file `name` of `scope` (replacing one of that
    /// name) and returns the stored name. Refused over the per-file cap,
    /// when the tenant's files (and the directories the name adds) would
    /// exceed the per-tenant cap, or past [`MAX_TENANT_ENTRIES`].
    pub fn write(&self, scope: &FilesScope, name: &str, content: &[u8]) -> Result<String, FilesError> {
        let parts = names::components(name)?;
        let config = &self.inner.config;
        if content.len() as u64 > config.max_file_bytes {
            return Err(FilesError::TooLarge(format!(
                "the file is {} bytes; files hold at most {} bytes",
                content.len(),
                config.max_file_bytes
            )));
        }
        let lock = self.tenant_lock(&scope.tenant);
        let _writing = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let root = open_root(&config.root)?;
        let tenant_dir = open_dir(&root, &segment(&scope.tenant), true, "")?
            .ok_or_else(|| FilesError::Io(std::io::Error::other("the tenant directory could not be created")))?;
        let used = usage(&tenant_dir)?;
        let (leaf, dirs) = parts.split_last().ok_or_else(|| FilesError::Invalid("the file name is empty".into()))?;
        // The agent's directory and the name's own: those missing are made.
        let agent = segment(&scope.agent);
        let path: Vec<&str> = std::iter::once(agent.as_str()).chain(dirs.iter().copied()).collect();
        let (dir, missing) = walk_existing(&tenant_dir, &path, name)?;
        let replaced = match &dir {
            Some(dir) => match rustix::fs::statat(dir, *leaf, AtFlags::SYMLINK_NOFOLLOW) {
                Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile => Some(stat.st_size as u64),
                Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Directory => {
                    return Err(FilesError::Invalid(format!("`{}` is a directory", shown(name))));
                }
                _ => None,
            },
            None => None,
        };
        let added_entries = missing + usize::from(replaced.is_none());
        if used.entries + added_entries > MAX_TENANT_ENTRIES {
            return Err(FilesError::Denied(format!(
                "the tenant's storage holds {} files and directories, at most {MAX_TENANT_ENTRIES}; delete some first",
                used.entries
            )));
        }
        let replaced = replaced.unwrap_or(0);
        let after = used.bytes - replaced.min(used.bytes) + content.len() as u64 + missing as u64 * DIRECTORY_BYTES;
        if after > config.max_tenant_bytes {
            return Err(FilesError::TooLarge(format!(
                "the tenant's files would take {after} bytes (each directory counts {DIRECTORY_BYTES}); the \
                 tenant may store at most {} bytes",
                config.max_tenant_bytes
            )));
        }
        let dir = match dir {
            Some(dir) => dir,
            None => walk(tenant_dir, &path, true, name)?
                .ok_or_else(|| FilesError::Io(std::io::Error::other("a directory could not be created")))?,
        };
        // Write beside the target, then rename over it: a reader sees the
        // old file or the new one, never half of one.
        let temporary = format!(".tmp-{}", uuid::Uuid::new_v4());
        let fd = rustix::fs::openat(
            &dir,
            temporary.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )
        .map_err(std::io::Error::from)?;
        let mut file = std::fs::File::from(fd);
        let written = file.write_all(content).and_then(|()| file.sync_data());
        let renamed = written
            .and_then(|()| rustix::fs::renameat(&dir, temporary.as_str(), &dir, *leaf).map_err(std::io::Error::from));
        if let Err(error) = renamed {
            let _ = rustix::fs::unlinkat(&dir, temporary.as_str(), AtFlags::empty());
            return Err(FilesError::Io(error));
        }
        Ok(name.to_owned())
    }

    /// Deletes file `name` of `scope`; `false` when there was none. The
    /// directories it leaves empty go too, up to the agent's own, so a
    /// deletion gives back everything the write took.
    pub fn delete(&self, scope: &FilesScope, name: &str) -> Result<bool, FilesError> {
        let parts = names::components(name)?;
        let (leaf, dirs) = parts.split_last().ok_or_else(|| FilesError::Invalid("the file name is empty".into()))?;
        let lock = self.tenant_lock(&scope.tenant);
        let _writing = lock.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let root = open_root(&self.inner.config.root)?;
        let Some(tenant_dir) = open_dir(&root, &segment(&scope.tenant), false, "")? else { return Ok(false) };
        let agent = segment(&scope.agent);
        let path: Vec<&str> = std::iter::once(agent.as_str()).chain(dirs.iter().copied()).collect();
        // Each directory down the path, with the one holding it.
        let mut chain = vec![tenant_dir];
        for component in &path {
            let Some(next) = open_dir(chain.last().expect("the tenant's directory"), component, false, name)? else {
                return Ok(false);
            };
            chain.push(next);
        }
        let dir = chain.last().expect("the file's directory");
        match rustix::fs::statat(dir, *leaf, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::RegularFile => {}
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Directory => {
                return Err(FilesError::Invalid(format!("`{}` is a directory, not a file", shown(name))));
            }
            Ok(_) => return Err(symlink(name)),
            Err(rustix::io::Errno::NOENT) => return Ok(false),
            Err(e) => return Err(FilesError::Io(e.into())),
        }
        match rustix::fs::unlinkat(dir, *leaf, AtFlags::empty()) {
            Ok(()) => {}
            Err(rustix::io::Errno::NOENT) => return Ok(false),
            Err(e) => return Err(FilesError::Io(e.into())),
        }
        // Empty directories, innermost first; one still holding anything
        // (a hidden temporary file included) ends the climb.
        for (parent, component) in chain.iter().zip(&path).rev() {
            match rustix::fs::unlinkat(parent, *component, AtFlags::REMOVEDIR) {
                Ok(()) => {}
                // Not empty, gone, or no longer a directory (swapped for
                // something else meanwhile): the file is deleted all the same.
                Err(
                    rustix::io::Errno::NOTEMPTY
                    | rustix::io::Errno::EXIST
                    | rustix::io::Errno::NOENT
                    | rustix::io::Errno::NOTDIR,
                ) => break,
                Err(e) => return Err(FilesError::Io(e.into())),
            }
        }
        Ok(true)
    }

    /// What `tenant` stores now, over all its agents.
    pub fn tenant_usage(&self, tenant: &str) -> Result<TenantUsage, FilesError> {
        let root = open_root(&self.inner.config.root)?;
        let Some(dir) = open_dir(&root, &segment(tenant), false, "")? else { return Ok(TenantUsage::default()) };
        usage(&dir)
    }

    /// Bytes `tenant` stores now, over all its agents, as its cap counts
    /// them (see [`TenantUsage::bytes`]).
    pub fn tenant_bytes(&self, tenant: &str) -> Result<u64, FilesError> {
        Ok(self.tenant_usage(tenant)?.bytes)
    }

    /// The lock serialising `tenant`'s writes and deletions.
    fn tenant_lock(&self, tenant: &str) -> Arc<Mutex<()>> {
        self.inner.writing.entry(tenant.to_owned()).or_default().clone()
    }

    /// The scope's directory; `None` when it does not exist (nothing
    /// stored yet).
    fn scope_dir(&self, scope: &FilesScope) -> Result<Option<OwnedFd>, FilesError> {
        let root = open_root(&self.inner.config.root)?;
        let Some(tenant) = open_dir(&root, &segment(&scope.tenant), false, "")? else { return Ok(None) };
        open_dir(&tenant, &segment(&scope.agent), false, "")
    }
}

/// The operator's root directory (which may itself be a symbolic link:
/// the operator chose it).
fn open_root(root: &Path) -> Result<OwnedFd, FilesError> {
    rustix::fs::openat(rustix::fs::CWD, root, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| FilesError::Io(e.into()))
}

/// Opens (and with `create`, makes) directory `component` of `dir` without
/// following a symbolic link; `None` when it does not exist.
fn open_dir(dir: &OwnedFd, component: &str, create: bool, name: &str) -> Result<Option<OwnedFd>, FilesError> {
    if create {
        match rustix::fs::mkdirat(dir, component, Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(FilesError::Io(e.into())),
        }
    }
    match rustix::fs::openat(
        dir,
        component,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => Ok(Some(fd)),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        // O_NOFOLLOW on a symbolic link: ELOOP; O_DIRECTORY on a file: ENOTDIR.
        Err(rustix::io::Errno::LOOP) => Err(symlink(if name.is_empty() { component } else { name })),
        Err(rustix::io::Errno::NOTDIR) => Err(match rustix::fs::statat(dir, component, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) if FileType::from_raw_mode(stat.st_mode) == FileType::Symlink => {
                symlink(if name.is_empty() { component } else { name })
            }
            _ => FilesError::Invalid(format!("`{}` is a file, not a directory", shown(component))),
        }),
        Err(e) => Err(FilesError::Io(e.into())),
    }
}

/// Walks `dirs` down from `dir`; `None` when one is missing (and not created).
fn walk(mut dir: OwnedFd, dirs: &[&str], create: bool, name: &str) -> Result<Option<OwnedFd>, FilesError> {
    for component in dirs {
        match open_dir(&dir, component, create, name)? {
            Some(next) => dir = next,
            None => return Ok(None),
        }
    }
    Ok(Some(dir))
}

/// Walks `dirs` down from `dir` without making any: the deepest one when
/// all exist, and how many are missing.
fn walk_existing(dir: &OwnedFd, dirs: &[&str], name: &str) -> Result<(Option<OwnedFd>, usize), FilesError> {
    let mut current: Option<OwnedFd> = None;
    for (depth, component) in dirs.iter().enumerate() {
        match open_dir(current.as_ref().unwrap_or(dir), component, false, name)? {
            Some(next) => current = Some(next),
            None => return Ok((None, dirs.len() - depth)),
        }
    }
    match current {
        Some(found) => Ok((Some(found), 0)),
        None => Ok((Some(dir.try_clone()?), 0)),
    }
}

/// The files and directories under `tenant_dir`, as the cap counts them.
fn usage(tenant_dir: &OwnedFd) -> Result<TenantUsage, FilesError> {
    let mut used = TenantUsage::default();
    let mut visited = 0;
    let mut visit = |_: &str, entry: Entry| {
        used.entries += 1;
        used.bytes = used.bytes.saturating_add(match entry {
            Entry::File(bytes) => bytes,
            Entry::Directory => DIRECTORY_BYTES,
        });
    };
    collect(tenant_dir, "", &mut visit, &mut visited, 0)?;
    Ok(used)
}

fn symlink(name: &str) -> FilesError {
    FilesError::Denied(format!(
        "`{}` is (or passes through) a symbolic link, which the file store never follows",
        shown(name)
    ))
}

/// What the walk met.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// A regular file of this size.
    File(u64),
    /// A directory (visited before what it holds).
    Directory,
}

/// Visits every regular file and directory under `dir` (not following
/// symbolic links, skipping hidden names), with its name relative to
/// where the walk started.
fn collect(
    dir: &OwnedFd,
    at: &str,
    visit: &mut dyn FnMut(&str, Entry),
    visited: &mut usize,
    depth: usize,
) -> Result<(), FilesError> {
    if depth > names::MAX_DEPTH {
        return Ok(());
    }
    for entry in Dir::read_from(dir).map_err(std::io::Error::from)? {
        let entry = entry.map_err(std::io::Error::from)?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        *visited += 1;
        if *visited > MAX_ENTRIES {
            return Err(FilesError::Denied(format!("the storage holds more than {MAX_ENTRIES} entries")));
        }
        let Ok(component) = entry.file_name().to_str() else { continue };
        if component.starts_with('.') {
            continue;
        }
        let stat = match rustix::fs::statat(dir, component, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(FilesError::Io(e.into())),
        };
        let name = if at.is_empty() { component.to_owned() } else { format!("{at}/{component}") };
        match FileType::from_raw_mode(stat.st_mode) {
            FileType::RegularFile => visit(&name, Entry::File(stat.st_size as u64)),
            FileType::Directory => {
                visit(&name, Entry::Directory);
                if let Some(sub) = open_dir(dir, component, false, &name).ok().flatten() {
                    collect(&sub, &name, visit, visited, depth + 1)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// A tenant or agent id as one directory name: ids of letters, digits,
/// `_` and `-` (at most 64) stay as they are; anything else becomes `~`
/// and a hash, so no id can climb, hide or collide with another.
pub fn segment(id: &str) -> String {
    let plain =
        !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if plain {
        return id.to_owned();
    }
    use sha2::Digest;
    format!("~{}", hex::encode(&sha2::Sha256::digest(id.as_bytes())[..16]))
}

/// The MIME type Langflow gives a file of this name.
pub fn content_type(name: &str) -> &'static str {
    let extension = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    match extension.as_str() {
        "txt" | "log" => "text/plain",
        "md" | "mdx" => "text/markdown",
        "csv" => "text/csv",
        "json" => "application/json",
        "yaml" | "yml" => "application/yaml",
        "xml" => "application/xml",
        "html" | "htm" => "text/html",
        "py" => "text/x-python",
        "js" => "text/javascript",
        "ts" | "tsx" => "application/typescript",
        "sh" => "application/x-sh",
        "sql" => "application/sql",
        "pdf" => "application/pdf",
        "docx" => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_never_climb_or_collide() {
        assert_eq!(segment("acme"), "acme");
        assert!(segment("..").starts_with('~'));
        assert!(segment("a/b").starts_with('~'));
        assert!(segment("").starts_with('~'));
        assert_ne!(segment("~x"), segment("~y"));
        assert_eq!(segment("x").len(), 1);
    }

    #[test]
    fn a_walk_counts_each_file_and_directory_once() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = FileStore::open(FilesConfig::new(root.path())).expect("opens");
        let scope = FilesScope { tenant: "t".into(), agent: "a".into() };
        store.write(&scope, "d1/d2/f.txt", b"x").expect("written");
        store.write(&scope, "g.txt", b"y").expect("written");
        let tenant = open_dir(&open_root(root.path()).expect("root"), "t", false, "").expect("opens").expect("there");
        let mut visited = 0;
        collect(&tenant, "", &mut |_, _| {}, &mut visited, 0).expect("walks");
        // a, a/d1, a/d1/d2, a/d1/d2/f.txt, a/g.txt: `.` and `..` are not entries.
        assert_eq!(visited, 5);
        assert_eq!(store.tenant_usage("t").expect("usage"), TenantUsage { bytes: 3 * DIRECTORY_BYTES + 2, entries: 5 });
    }

    #[test]
    fn one_tenants_writes_never_wait_for_anothers() {
        let root = tempfile::tempdir().expect("tempdir");
        let store = FileStore::open(FilesConfig {
            root: root.path().into(),
            max_file_bytes: 1 << 20,
            max_tenant_bytes: 1 << 20,
        })
        .expect("opens");
        let scope = |tenant: &str| FilesScope { tenant: tenant.into(), agent: "a".into() };
        store.write(&scope("slow"), "x.txt", b"x").expect("written");
        // As if a write of tenant `slow` were walking its files.
        let slow = store.inner.writing.get("slow").map(|lock| lock.clone()).expect("its lock");
        let _held = slow.lock().expect("lock");
        let (done, finished) = std::sync::mpsc::channel();
        let other = store.clone();
        std::thread::spawn(move || done.send(other.write(&scope("quick"), "y.txt", b"y").is_ok()));
        let finished = finished.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(finished, Ok(true), "the other tenant's write went ahead");
    }
}
