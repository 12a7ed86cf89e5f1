//! The function store: deployed components by content digest, names mapped
//! to digests, and the precompiled copies that make a cold call cheap.
//!
//! Layout under `<root>/functions/`:
//! - `components/<hex>.wasm`: the deployed bytes, by sha256;
//! - `meta/<hex>.json`: what the component is ([`ComponentInfo`]);
//! - `compiled/<hex>-<engine>.cwasm`: native code, keyed by digest *and* the
//!   engine's `precompile_compatibility_hash`, so a copy made by another
//!   engine configuration or Wasmtime version is never loaded;
//! - `names/<name>.json`: a name's versions, the last current. Redeploying
//!   makes a new version; older digests stay for the Runs that used them.
//!   A deploy or removal changes it under the name's exclusive `flock` on
//!   `names/.<name>.lock`, so deploys from several processes at once lose
//!   no version.
//!
//! Loaded components are kept in memory as pre-linked `InstancePre`s, so a
//! call never compiles or links.

use crate::execute::engine::{FunctionInfo, GuestPre, RhEngine};
use crate::execute::host::{ArtifactCtx, HostState};
use crate::execute::store::StoreBuilder;
use crate::store::files::{Stamp, lock, stamp, write_atomic};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use wasmtime::component::Component;
use wasmtime_wasi::p2::bindings::CommandPre;

/// What kind of component was deployed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ComponentKind {
    /// Implements world `rh:wasm/guest`: exports functions.
    Function,
    /// Implements `wasi:cli/command`: a program with a `main`.
    Command,
}

/// A function exported by a component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionDesc {
    /// Its name.
    pub name: String,
    /// Its parameter names, in order.
    pub params: Vec<String>,
    /// Its doc comment.
    pub doc: Option<String>,
}

/// What a deployed component is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentInfo {
    /// Content digest (`sha256:...`).
    pub digest: String,
    /// Function or command.
    pub kind: ComponentKind,
    /// Size of the component, in bytes.
    pub size: u64,
    /// The functions it exports (empty for commands).
    pub functions: Vec<FunctionDesc>,
}

/// One deployed version of a name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// The component's digest.
    pub digest: String,
    /// When it was deployed (RFC 3339, UTC).
    pub deployed_at: String,
    /// Who deployed it, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_by: Option<String>,
}

/// A deployed name and its versions, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The name functions are called under.
    pub name: String,
    /// Its versions; the last is current.
    pub versions: Vec<Version>,
    /// Who owns the name: the user who first deployed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator: Option<String>,
    /// The current version's component.
    #[serde(skip)]
    pub info: Option<ComponentInfo>,
}

impl Deployment {
    /// The current version's digest.
    pub fn digest(&self) -> &str {
        self.versions
            .last()
            .map(|v| v.digest.as_str())
            .unwrap_or("")
    }
}

/// A component ready to instantiate.
pub(crate) struct Loaded {
    pub info: ComponentInfo,
    pub pre: Option<GuestPre<HostState>>,
    pub command: Option<CommandPre<HostState>>,
}

pub(crate) struct FunctionStore {
    components: PathBuf,
    meta: PathBuf,
    compiled: PathBuf,
    names: PathBuf,
    loaded: Mutex<HashMap<String, Arc<Loaded>>>,
    /// Deployed names already read, with the identity of the file read.
    names_seen: Mutex<HashMap<String, (Stamp, Arc<Deployment>)>>,
}

fn hex_of(digest: &str) -> &str {
    digest.trim_start_matches("sha256:")
}

const FUNCTION_EXPORT: &str = "rh:wasm/function@0.1.0";

impl FunctionStore {
    pub fn open(root: &Path) -> Result<Self> {
        let dir = root.join("functions");
        let s = FunctionStore {
            components: dir.join("components"),
            meta: dir.join("meta"),
            compiled: dir.join("compiled"),
            names: dir.join("names"),
            loaded: Mutex::new(HashMap::new()),
            names_seen: Mutex::new(HashMap::new()),
        };
        for d in [&s.components, &s.meta, &s.compiled, &s.names] {
            fs::create_dir_all(d).map_err(|e| Error::io("create folder", d, e))?;
        }
        Ok(s)
    }

    fn compiled_path(&self, eng: &RhEngine, digest: &str) -> PathBuf {
        self.compiled
            .join(format!("{}-{}.cwasm", hex_of(digest), eng.compat))
    }

    /// Validate, compile, store and name a component. `creator` owns a
    /// new name; `allow` is asked about an existing one (before the work of
    /// compiling, and again while the name is changed).
    pub async fn deploy(
        &self,
        eng: &RhEngine,
        artifacts: &Arc<crate::artifacts::ArtifactStore>,
        bytes: &[u8],
        name: &str,
        creator: Option<&str>,
        allow: &(dyn Fn(&Deployment) -> Result<()> + Sync),
    ) -> Result<Deployment> {
        crate::validate_name("function", name)?;
        match self.deployment(name) {
            Ok(d) => allow(&d)?,
            Err(Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
        let loaded = self.store(eng, artifacts, bytes).await?;
        let digest = loaded.info.digest.clone();
        // Held for a read and a small write, never across an `.await`.
        let _lock = self.lock(name)?;
        let mut dep = match self.deployment(name) {
            Ok(d) => {
                allow(&d)?;
                Deployment::clone(&d)
            }
            Err(Error::NotFound { .. }) => Deployment {
                name: name.to_string(),
                versions: Vec::new(),
                creator: creator.map(str::to_string),
                info: None,
            },
            Err(e) => return Err(e),
        };
        if dep.digest() != digest {
            dep.versions.push(Version {
                digest: digest.clone(),
                deployed_at: crate::names::now_rfc3339(),
                deployed_by: creator.map(str::to_string),
            });
            let path = self.names.join(format!("{name}.json"));
            write_atomic(
                &path,
                &serde_json::to_vec_pretty(&dep).map_err(|e| Error::Invalid(e.to_string()))?,
            )?;
        }
        dep.info = Some(loaded.info.clone());
        Ok(dep)
    }

    /// Forget a deployed name when `allow` says so. Its components stay:
    /// recorded Runs name them.
    pub fn remove(&self, name: &str, allow: &dyn Fn(&Deployment) -> Result<()>) -> Result<()> {
        // An unknown name is refused without leaving a lock file behind.
        self.deployment(name)?;
        let _lock = self.lock(name)?;
        let dep = self.deployment(name)?;
        allow(&dep)?;
        let path = self.names.join(format!("{name}.json"));
        fs::remove_file(&path).map_err(|e| Error::io("remove", &path, e))?;
        self.names_seen
            .lock()
            .expect("names cache poisoned")
            .remove(name);
        Ok(())
    }

    /// The name's lock, held while its record is read, changed and written
    /// back: an exclusive `flock`, so it excludes other processes as well as
    /// other threads (each takes it through a file of its own).
    fn lock(&self, name: &str) -> Result<File> {
        lock(&self.names.join(format!(".{name}.lock")))
    }

    /// Validate, compile and store a component by its digest, unnamed.
    pub async fn store(
        &self,
        eng: &RhEngine,
        artifacts: &Arc<crate::artifacts::ArtifactStore>,
        bytes: &[u8],
    ) -> Result<Arc<Loaded>> {
        if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
            return Err(Error::BadComponent {
                message: "the file is not WebAssembly (no `\\0asm` header)".into(),
            });
        }
        if bytes[4..8] != [0x0d, 0x00, 0x01, 0x00] {
            return Err(Error::BadComponent {
                message: "this is a core WebAssembly module, not a component; build with \
                          `--target wasm32-wasip2`"
                    .into(),
            });
        }
        // Hashing and compiling megabytes happen off the async workers.
        let shared: Arc<[u8]> = Arc::from(bytes);
        let digest = {
            let b = shared.clone();
            crate::background::run(move || Ok(crate::artifacts::digest_of(&b))).await?
        };
        let loaded = match self.load(eng, &digest) {
            Ok(l) => l,
            Err(Error::NotFound { .. }) => {
                let (component, cwasm) = eng.compile(shared.clone()).await?;
                let (info, pre, command) =
                    inspect(eng, artifacts, &component, &digest, bytes.len()).await?;
                // Store the component, its description and its native code;
                // the component file last, since its presence means "deployed".
                let cpath = self.compiled_path(eng, &digest);
                let mpath = self.meta.join(format!("{}.json", hex_of(&digest)));
                let wpath = self.components.join(format!("{}.wasm", hex_of(&digest)));
                let meta =
                    serde_json::to_vec_pretty(&info).map_err(|e| Error::Invalid(e.to_string()))?;
                crate::background::run(move || {
                    write_atomic(&cpath, &cwasm)?;
                    write_atomic(&mpath, &meta)?;
                    write_atomic(&wpath, &shared)
                })
                .await?;
                let loaded = Arc::new(Loaded { info, pre, command });
                self.loaded
                    .lock()
                    .expect("function cache poisoned")
                    .insert(digest.clone(), loaded.clone());
                loaded
            }
            Err(e) => return Err(e),
        };
        Ok(loaded)
    }

    /// A deployed name and its current component.
    ///
    /// Called on every call: a name's record is parsed once and kept while
    /// its file stays the same one (names are replaced by rename, so another
    /// process's deploy changes the inode), which costs one `statx`, and
    /// shared, not copied.
    pub fn deployment(&self, name: &str) -> Result<Arc<Deployment>> {
        crate::validate_name("function", name)?;
        let path = self.names.join(format!("{name}.json"));
        let stamp = stamp(&path);
        if let Some(stamp) = stamp
            && let Some((seen, dep)) = self
                .names_seen
                .lock()
                .expect("names cache poisoned")
                .get(name)
            && *seen == stamp
        {
            return Ok(dep.clone());
        }
        let dep = Arc::new(self.read_deployment(name, &path)?);
        if let Some(stamp) = stamp {
            self.names_seen
                .lock()
                .expect("names cache poisoned")
                .insert(name.to_string(), (stamp, dep.clone()));
        }
        Ok(dep)
    }

    fn read_deployment(&self, name: &str, path: &Path) -> Result<Deployment> {
        let path = path.to_path_buf();
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound {
                    what: "deployed function",
                    name: name.to_string(),
                });
            }
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        let mut dep: Deployment =
            serde_json::from_slice(&bytes).map_err(|source| Error::Corrupt { path, source })?;
        dep.info = Some(self.info(dep.digest())?);
        Ok(dep)
    }

    /// Every stored component: its digest, size and age.
    pub fn components(&self) -> Result<Vec<(String, u64, std::time::Duration)>> {
        crate::artifacts::stored_files(&self.components, ".wasm")
    }

    /// Remove a stored component, what is known of it and its precompiled
    /// copies: the bytes freed.
    pub fn remove_component(&self, digest: &str) -> u64 {
        let hex = hex_of(digest);
        let mut paths = vec![
            self.components.join(format!("{hex}.wasm")),
            self.meta.join(format!("{hex}.json")),
        ];
        if let Ok(entries) = fs::read_dir(&self.compiled) {
            paths.extend(
                entries
                    .flatten()
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with(&format!("{hex}-"))
                    })
                    .map(|e| e.path()),
            );
        }
        self.loaded.lock().expect("loaded poisoned").remove(digest);
        crate::artifacts::remove_counted(&paths)
    }

    pub fn list(&self) -> Result<Vec<Deployment>> {
        let mut out = Vec::new();
        let entries = fs::read_dir(&self.names).map_err(|e| Error::io("read", &self.names, e))?;
        for e in entries.flatten() {
            let n = e.file_name();
            if let Some(name) = n.to_str().and_then(|n| n.strip_suffix(".json"))
                && !name.starts_with('.')
            {
                out.push(Deployment::clone(&*self.deployment(name)?));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    pub fn info(&self, digest: &str) -> Result<ComponentInfo> {
        if let Some(l) = self
            .loaded
            .lock()
            .expect("function cache poisoned")
            .get(digest)
        {
            return Ok(l.info.clone());
        }
        let path = self.meta.join(format!("{}.json", hex_of(digest)));
        match fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b).map_err(|source| Error::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
                what: "component",
                name: digest.to_string(),
            }),
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    /// The ready-to-instantiate component of a digest, when it is in memory.
    pub fn cached(&self, digest: &str) -> Option<Arc<Loaded>> {
        self.loaded
            .lock()
            .expect("function cache poisoned")
            .get(digest)
            .cloned()
    }

    /// The ready-to-instantiate component of a digest: from memory, else
    /// from the precompiled copy, else compiled from the stored bytes.
    pub fn load(&self, eng: &RhEngine, digest: &str) -> Result<Arc<Loaded>> {
        if let Some(l) = self
            .loaded
            .lock()
            .expect("function cache poisoned")
            .get(digest)
        {
            return Ok(l.clone());
        }
        let info = self.info(digest)?;
        let cpath = self.compiled_path(eng, digest);
        let component = match crate::precompiled::load(&eng.engine, &cpath) {
            Some(c) => c,
            None => {
                let wpath = self.components.join(format!("{}.wasm", hex_of(digest)));
                let bytes = fs::read(&wpath).map_err(|e| Error::io("read", &wpath, e))?;
                let c = Component::new(&eng.engine, &bytes).map_err(|e| Error::BadComponent {
                    message: format!("{e:#}"),
                })?;
                write_atomic(&cpath, &c.serialize().map_err(Error::engine)?)?;
                c
            }
        };
        let (pre, command) = match info.kind {
            ComponentKind::Function => (Some(link(eng, &component)?), None),
            ComponentKind::Command => (None, Some(link_command(eng, &component)?)),
        };
        let loaded = Arc::new(Loaded { info, pre, command });
        self.loaded
            .lock()
            .expect("function cache poisoned")
            .insert(digest.to_string(), loaded.clone());
        Ok(loaded)
    }
}

fn link(eng: &RhEngine, component: &Component) -> Result<GuestPre<HostState>> {
    let pre = eng
        .linker
        .instantiate_pre(component)
        .map_err(|e| Error::BadComponent {
            message: format!("{e:#}"),
        })?;
    GuestPre::new(pre).map_err(|e| Error::BadComponent {
        message: format!("{e:#}"),
    })
}

fn link_command(eng: &RhEngine, component: &Component) -> Result<CommandPre<HostState>> {
    let bad = |e: wasmtime::Error| Error::BadComponent {
        message: format!("{e:#}"),
    };
    CommandPre::new(eng.linker.instantiate_pre(component).map_err(bad)?).map_err(bad)
}

/// Find out what a freshly compiled component is, and check it can run here.
async fn inspect(
    eng: &RhEngine,
    artifacts: &Arc<crate::artifacts::ArtifactStore>,
    component: &Component,
    digest: &str,
    size: usize,
) -> Result<(
    ComponentInfo,
    Option<GuestPre<HostState>>,
    Option<CommandPre<HostState>>,
)> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(&eng.engine)
        .map(|(n, _)| n.to_string())
        .collect();
    let is_function = exports.iter().any(|e| e == FUNCTION_EXPORT);
    let is_command = exports.iter().any(|e| e.starts_with("wasi:cli/run@0.2"));
    if is_function {
        let pre = link(eng, component)?;
        let _admitted = eng.admit_inspection().await?;
        let mut store = StoreBuilder::new(eng, eng.inspection_memory())
            .fuel(10_000_000_000)
            .build(ArtifactCtx::new(artifacts.clone(), String::new(), None));
        let describe = async {
            let guest = pre.instantiate_async(&mut store).await?;
            guest.rh_wasm_function().call_describe(&mut store).await
        };
        let infos: Vec<FunctionInfo> =
            tokio::time::timeout(std::time::Duration::from_secs(10), describe)
                .await
                .map_err(|_| Error::BadComponent {
                    message: "`describe` did not return within 10s".into(),
                })?
                .map_err(|e| Error::BadComponent {
                    message: format!("`describe` failed: {e:#}"),
                })?;
        let functions = infos
            .into_iter()
            .map(|f| FunctionDesc {
                name: f.name,
                params: f.params,
                doc: f.doc,
            })
            .collect();
        let info = ComponentInfo {
            digest: digest.to_string(),
            kind: ComponentKind::Function,
            size: size as u64,
            functions,
        };
        Ok((info, Some(pre), None))
    } else if is_command {
        let command = link_command(eng, component)?;
        let info = ComponentInfo {
            digest: digest.to_string(),
            kind: ComponentKind::Command,
            size: size as u64,
            functions: Vec::new(),
        };
        Ok((info, None, Some(command)))
    } else {
        Err(Error::BadComponent {
            message: format!(
                "it implements neither world `rh:wasm/guest` (export `{FUNCTION_EXPORT}`) nor \
                 `wasi:cli/command`; its exports: [{}]",
                exports.join(", ")
            ),
        })
    }
}
