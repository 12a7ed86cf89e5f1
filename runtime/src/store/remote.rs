//! Run folders in object storage (S3 and S3-compatible servers): push a
//! finished Run, pull it back anywhere, byte for byte.
//!
//! Layout under `s3://BUCKET/PREFIX/`:
//!
//! ```text
//! <run>/blobs/<sha256>      each file's bytes, named by their digest
//! <run>/manifest.json       the Run's files: path, size, sha256; written last
//! ```
//!
//! A pushed Run exists only once its manifest does, and the manifest is put
//! after every blob it names: an interrupted push leaves blobs and no
//! manifest, which a pull refuses as incomplete, never a half Run that looks
//! whole. Pushing again uploads only the blobs that are not there yet (a blob
//! is one PUT or one completed multipart upload, so one that exists is
//! whole). A pull checks every file's size and digest against the manifest,
//! builds the folder under a temporary name and renames it into place.
//!
//! A manifest is read with a size bound and checked before anything is
//! made or downloaded: it must describe a Run folder (a `config.json`, the
//! Run's own file names or files under `scratch/`, each once), and a blob
//! that sends more bytes than its manifest announces is refused at the
//! first byte too many. A store opened [`RemoteStore::signed_with`] a
//! [`TeamKey`] (a shared store) signs the manifests it pushes and reads
//! only manifests signed with that key (see the signing module).
//!
//! Credentials and region come from the standard AWS environment variables
//! (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
//! `AWS_REGION`); the endpoint from `AWS_ENDPOINT_URL` or an explicit one,
//! for S3-compatible servers.

use crate::manifest::{MAX_MANIFEST, Manifest, ManifestFile};
use crate::signing::TeamKey;
use crate::{Error, Result};
use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Files at least this large go up in parts.
const MULTIPART_AT: u64 = 8 << 20;
const PART: usize = 8 << 20;

/// Where Runs are kept: a bucket and a prefix in it.
#[derive(Clone)]
pub struct RemoteStore {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: String,
    /// Signs pushed manifests and must have signed pulled ones.
    signer: Option<Arc<TeamKey>>,
}

impl std::fmt::Debug for RemoteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.url)
    }
}

/// What a push or pull moved.
#[derive(Debug, Clone, Default)]
pub struct Transfer {
    /// Files sent or received.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
    /// Blobs already in the store from an earlier, interrupted push.
    pub skipped: usize,
}

/// Progress of a copy: bytes done so far, of the total.
pub type Progress<'a> = &'a (dyn Fn(u64, u64) + Sync);

fn remote_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Remote(format!("{what}: {e}"))
}

/// The sha256 of `bytes` (hex), hashed off the async workers.
async fn sha256_hex(bytes: Vec<u8>) -> Result<String> {
    crate::background::run(move || Ok(hex::encode(Sha256::digest(&bytes)))).await
}

/// Split `s3://bucket/some/prefix` into the bucket and the prefix.
pub fn parse_s3_url(url: &str) -> Result<(String, String)> {
    let rest = url.strip_prefix("s3://").ok_or_else(|| {
        Error::Invalid(format!("`{url}` is not an S3 address (s3://BUCKET/PREFIX)"))
    })?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    if bucket.is_empty() {
        return Err(Error::Invalid(format!("`{url}` names no bucket")));
    }
    let prefix = prefix.trim_matches('/');
    if prefix.split('/').any(|c| c == "." || c == "..") {
        return Err(Error::Invalid(format!(
            "`{url}`: `.` and `..` are not allowed"
        )));
    }
    Ok((bucket.to_string(), prefix.to_string()))
}

impl RemoteStore {
    /// The store at `url` (`s3://BUCKET/PREFIX`), with credentials from the
    /// environment and `endpoint` (or `AWS_ENDPOINT_URL`) for S3-compatible
    /// servers.
    pub fn open(url: &str, endpoint: Option<&str>) -> Result<RemoteStore> {
        let (bucket, prefix) = parse_s3_url(url)?;
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&bucket);
        let endpoint = endpoint
            .map(str::to_string)
            .or_else(|| std::env::var("AWS_ENDPOINT_URL").ok());
        if let Some(ep) = endpoint {
            b = b
                .with_allow_http(ep.starts_with("http://"))
                .with_endpoint(ep);
        }
        if std::env::var_os("AWS_REGION").is_none()
            && std::env::var_os("AWS_DEFAULT_REGION").is_none()
        {
            b = b.with_region("us-east-1");
        }
        let store = b.build().map_err(|e| remote_err("configuring S3", e))?;
        Ok(RemoteStore {
            url: url.trim_end_matches('/').to_string(),
            store: Arc::new(store),
            prefix,
            signer: None,
        })
    }

    /// The store under `rest` (a deeper prefix).
    pub fn sub(&self, rest: &str) -> RemoteStore {
        let rest = rest.trim_matches('/');
        RemoteStore {
            url: format!("{}/{rest}", self.url),
            store: self.store.clone(),
            prefix: if self.prefix.is_empty() {
                rest.to_string()
            } else {
                format!("{}/{rest}", self.prefix)
            },
            signer: self.signer.clone(),
        }
    }

    /// This store, signing the manifests it pushes with `key` and reading
    /// only manifests signed with it.
    pub fn signed_with(mut self, key: TeamKey) -> RemoteStore {
        self.signer = Some(Arc::new(key));
        self
    }

    /// Whether manifests are signed and checked with a team key.
    pub fn is_signed(&self) -> bool {
        self.signer.is_some()
    }

    /// The Runs pushed here whose push finished (they have a manifest),
    /// newest first.
    pub async fn runs(&self) -> Result<Vec<String>> {
        self.runs_within(usize::MAX).await
    }

    /// [`RemoteStore::runs`] among the first `max` objects listed: what a
    /// lookup can afford where anyone may have put any number of them.
    pub async fn runs_within(&self, max: usize) -> Result<Vec<String>> {
        let root = if self.prefix.is_empty() {
            None
        } else {
            Some(ObjPath::from(self.prefix.as_str()))
        };
        let mut found = Vec::new();
        let mut listing = self.store.list(root.as_ref()).take(max);
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| remote_err("listing the store", e))?;
            let key = meta.location.as_ref();
            let rel = match &root {
                Some(r) => key
                    .strip_prefix(r.as_ref())
                    .map(|k| k.trim_start_matches('/')),
                None => Some(key),
            };
            if let Some(run) = rel.and_then(|r| r.strip_suffix("/manifest.json"))
                && !run.contains('/')
            {
                found.push((meta.last_modified, run.to_string()));
            }
        }
        found.sort_by_key(|f| std::cmp::Reverse(f.0));
        Ok(found.into_iter().map(|(_, r)| r).collect())
    }

    /// The address of a Run in this store.
    pub fn run_url(&self, run: &str) -> String {
        format!("{}/{run}", self.url)
    }

    fn key(&self, rest: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(rest)
        } else {
            ObjPath::from(format!("{}/{rest}", self.prefix))
        }
    }

    /// Push the finished Run in folder `dir`. Blobs already in the store
    /// (an interrupted push) are not sent again; the manifest goes last.
    pub async fn push(&self, dir: &Path, progress: Progress<'_>) -> Result<(Manifest, Transfer)> {
        let run = crate::Run::open(dir)?;
        if !run.status().is_terminal() {
            return Err(Error::Invalid(format!(
                "run `{}` is still {}; only finished Runs are pushed",
                run.name(),
                run.status()
            )));
        }
        let name = run.name().to_string();
        // Every file is opened through the folder's handle, which follows
        // no symlink, to be hashed and again to be sent; a file that
        // changed in between is caught by the pull's digest check.
        let folder = crate::RunDir::open(dir)?;
        let mut files = Vec::new();
        for rel in folder.files()? {
            let f = folder.open_file(&rel)?;
            let (size, digest) = crate::folder::hash_reader(f, &dir.join(&rel))?;
            files.push(ManifestFile {
                path: rel,
                size,
                sha256: digest.trim_start_matches("sha256:").to_string(),
            });
        }
        let manifest = Manifest {
            format: 1,
            run: name.clone(),
            files,
        };
        // What an earlier attempt already put.
        let mut present = HashSet::new();
        let mut listing = self.store.list(Some(&self.key(&format!("{name}/blobs"))));
        while let Some(meta) = listing.next().await {
            let meta = meta.map_err(|e| remote_err("listing the store", e))?;
            if let Some(digest) = meta.location.filename() {
                present.insert((digest.to_string(), meta.size));
            }
        }
        let total: u64 = manifest.files.iter().map(|f| f.size).sum();
        let mut t = Transfer::default();
        let mut done = 0;
        let mut sent = HashSet::new();
        for f in &manifest.files {
            if present.contains(&(f.sha256.clone(), f.size)) || !sent.insert(f.sha256.clone()) {
                t.skipped += 1;
                done += f.size;
                progress(done, total);
                continue;
            }
            let key = self.key(&format!("{name}/blobs/{}", f.sha256));
            let file = folder.open_file(&f.path)?;
            self.put_file(file, &dir.join(&f.path), &key, f.size, &mut |n| {
                progress(done + n, total)
            })
            .await?;
            done += f.size;
            t.files += 1;
            t.bytes += f.size;
        }
        let body = manifest.to_json(self.signer.as_deref())?;
        self.store
            .put(
                &self.key(&format!("{name}/manifest.json")),
                PutPayload::from(body),
            )
            .await
            .map_err(|e| remote_err("writing the manifest", e))?;
        Ok((manifest, t))
    }

    async fn put_file(
        &self,
        file: std::fs::File,
        path: &Path,
        key: &ObjPath,
        size: u64,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<()> {
        // Exactly the bytes that were hashed, even if the file grew since.
        let mut file = file.take(size);
        if size < MULTIPART_AT {
            let mut bytes = Vec::with_capacity(size as usize);
            file.read_to_end(&mut bytes)
                .map_err(|e| Error::io("read", path, e))?;
            self.store
                .put(key, PutPayload::from(bytes))
                .await
                .map_err(|e| remote_err(&format!("uploading {}", path.display()), e))?;
            progress(size);
            return Ok(());
        }
        let upload = self
            .store
            .put_multipart(key)
            .await
            .map_err(|e| remote_err("starting an upload", e))?;
        let mut w = WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; PART];
        let mut sent = 0;
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| Error::io("read", path, e))?;
            if n == 0 {
                break;
            }
            w.wait_for_capacity(4)
                .await
                .map_err(|e| remote_err("uploading", e))?;
            w.write(&buf[..n]);
            sent += n as u64;
            progress(sent);
        }
        w.finish()
            .await
            .map_err(|e| remote_err(&format!("uploading {}", path.display()), e))?;
        Ok(())
    }

    /// The manifest of the Run pushed as `run`, checked before anything is
    /// downloaded: read with a size bound, describing a Run folder, and, in
    /// a signed store, signed with its key. `NotFound` when there is none
    /// (never pushed, or a push that did not finish).
    pub async fn manifest(&self, run: &str) -> Result<Manifest> {
        self.manifest_within(run, MAX_MANIFEST).await
    }

    /// [`RemoteStore::manifest`], refusing a manifest over `max` bytes
    /// without reading the rest of it.
    pub async fn manifest_within(&self, run: &str, max: u64) -> Result<Manifest> {
        crate::validate_run_name(run)?;
        let url = self.run_url(run);
        let key = self.key(&format!("{run}/manifest.json"));
        let got = match self.store.get(&key).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(Error::NotFound {
                    what: "pushed run (or its push did not finish)",
                    name: url,
                });
            }
            Err(e) => return Err(remote_err("reading the manifest", e)),
        };
        let too_big = || Error::Remote(format!("the manifest of {url} is over {max} bytes"));
        if got.meta.size > max {
            return Err(too_big());
        }
        let mut bytes = Vec::new();
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| remote_err("reading the manifest", e))?;
            if (bytes.len() + chunk.len()) as u64 > max {
                return Err(too_big());
            }
            bytes.extend_from_slice(&chunk);
        }
        let (m, signature) = Manifest::parse(&bytes)
            .map_err(|e| Error::Remote(format!("the manifest of {url} is damaged: {e}")))?;
        if m.run != run {
            return Err(Error::Remote(format!(
                "the manifest at {url} is for run `{}`",
                m.run
            )));
        }
        if let Some(key) = &self.signer {
            m.verify(key, signature.as_deref())
                .map_err(|e| Error::Remote(format!("{url}: {e}")))?;
        }
        m.check()?;
        Ok(m)
    }

    /// Store `bytes` under their digest (`blobs/<hex>`), once: a blob
    /// already there is not sent again. Returns the digest
    /// (`sha256:<hex>`).
    pub async fn put_blob(&self, bytes: &[u8]) -> Result<String> {
        let hex = sha256_hex(bytes.to_vec()).await?;
        let key = self.key(&format!("blobs/{hex}"));
        if self.store.head(&key).await.is_err() {
            self.store
                .put(&key, PutPayload::from(bytes.to_vec()))
                .await
                .map_err(|e| remote_err("storing a blob", e))?;
        }
        Ok(format!("sha256:{hex}"))
    }

    /// The blob of `digest` (`sha256:<hex>`), at most `max` bytes, checked
    /// against its digest: whoever else writes the bucket cannot change
    /// what is read.
    pub async fn get_blob(&self, digest: &str, max: u64) -> Result<Vec<u8>> {
        let hex = digest.strip_prefix("sha256:").unwrap_or(digest);
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid(format!("`{digest}` is not a sha256 digest")));
        }
        let key = self.key(&format!("blobs/{hex}"));
        let got = self.store.get(&key).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => Error::NotFound {
                what: "blob",
                name: digest.to_string(),
            },
            e => remote_err("reading a blob", e),
        })?;
        if got.meta.size > max {
            return Err(Error::Remote(format!("blob {digest} is over {max} bytes")));
        }
        let mut bytes = Vec::with_capacity(got.meta.size as usize);
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| remote_err("reading a blob", e))?;
            if (bytes.len() + chunk.len()) as u64 > max {
                return Err(Error::Remote(format!("blob {digest} is over {max} bytes")));
            }
            bytes.extend_from_slice(&chunk);
        }
        let (got, bytes) = crate::background::run(move || {
            let got = hex::encode(Sha256::digest(&bytes));
            Ok((got, bytes))
        })
        .await?;
        if got != hex {
            return Err(Error::Remote(format!(
                "blob {digest} does not match its digest"
            )));
        }
        Ok(bytes)
    }

    /// Copy the pushed Run `run` to the folder `dest` (which must not
    /// exist), every file checked against the manifest.
    pub async fn pull(&self, run: &str, dest: &Path, progress: Progress<'_>) -> Result<Transfer> {
        let m = self.manifest(run).await?;
        self.pull_manifest(&m, dest, progress).await
    }

    /// Copy the Run that `m` (from [`RemoteStore::manifest`]) describes to
    /// the folder `dest` (which must not exist), every file checked against
    /// it. A caller can look at the manifest first, and pull only what it
    /// would take.
    pub async fn pull_manifest(
        &self,
        m: &Manifest,
        dest: &Path,
        progress: Progress<'_>,
    ) -> Result<Transfer> {
        m.check()?;
        if dest.exists() {
            return Err(Error::Invalid(format!(
                "{} already exists; remove it or pull to another folder",
                dest.display()
            )));
        }
        let parent = dest
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&parent).map_err(|e| Error::io("create folder", &parent, e))?;
        let tmp = parent.join(format!(".pull-{}-{}", m.run, std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir(&tmp).map_err(|e| Error::io("create folder", &tmp, e))?;
        let got = self.fetch_into(m, &tmp, progress).await;
        match got {
            Ok(t) => {
                std::fs::rename(&tmp, dest).map_err(|e| Error::io("rename", dest, e))?;
                Ok(t)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }

    /// Download the files of a checked manifest into `tmp`. A blob that
    /// sends more bytes than announced is refused at once, before the rest
    /// of it is downloaded.
    async fn fetch_into(
        &self,
        m: &Manifest,
        tmp: &Path,
        progress: Progress<'_>,
    ) -> Result<Transfer> {
        let total: u64 = m.files.iter().map(|f| f.size).sum();
        let mut t = Transfer::default();
        for f in &m.files {
            let key = self.key(&format!("{}/blobs/{}", m.run, f.sha256));
            let out = tmp.join(&f.path);
            if let Some(d) = out.parent() {
                std::fs::create_dir_all(d).map_err(|e| Error::io("create folder", d, e))?;
            }
            let mut file = std::fs::File::create(&out).map_err(|e| Error::io("create", &out, e))?;
            let mut stream = match self.store.get(&key).await {
                Ok(r) => r.into_stream(),
                Err(object_store::Error::NotFound { .. }) => {
                    return Err(Error::Remote(format!(
                        "{} is missing from {}: the push is incomplete",
                        f.path,
                        self.run_url(&m.run)
                    )));
                }
                Err(e) => return Err(remote_err(&format!("downloading {}", f.path), e)),
            };
            let mut h = Sha256::new();
            let mut n = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| remote_err(&format!("downloading {}", f.path), e))?;
                if chunk.len() as u64 > f.size - n {
                    return Err(Error::Remote(format!(
                        "{} of {} is damaged: its blob holds more than the {} bytes the manifest says",
                        f.path,
                        self.run_url(&m.run),
                        f.size
                    )));
                }
                h.update(&chunk);
                std::io::Write::write_all(&mut file, &chunk)
                    .map_err(|e| Error::io("write", &out, e))?;
                n += chunk.len() as u64;
                progress(t.bytes + n, total);
            }
            let digest = hex::encode(h.finalize());
            if n != f.size || digest != f.sha256 {
                return Err(Error::Remote(format!(
                    "{} of {} is damaged: {n} bytes with sha256 {digest}, the manifest says {} bytes with {}",
                    f.path,
                    self.run_url(&m.run),
                    f.size,
                    f.sha256
                )));
            }
            t.files += 1;
            t.bytes += n;
        }
        Ok(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_addresses_split_into_bucket_and_prefix() {
        assert_eq!(
            parse_s3_url("s3://b/team/runs/").unwrap(),
            ("b".into(), "team/runs".into())
        );
        assert_eq!(parse_s3_url("s3://b").unwrap(), ("b".into(), "".into()));
        for bad in ["http://b/x", "s3://", "s3:///x", "s3://b/../x", "b/x"] {
            assert!(parse_s3_url(bad).is_err(), "{bad}");
        }
    }
}
