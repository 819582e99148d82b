//! Inputs of `apitrail import`: files, directories, glob patterns and S3 prefixes.
//!
//! A directory means every regular, non-hidden file inside it,
//! recursively, in path order. Hidden directories are skipped, and so are
//! symbolic links to directories, so a link cannot make the walk loop. A
//! pattern with `*`, `?` or `[` that names no existing path is expanded here,
//! for patterns the shell did not expand because they were quoted. An
//! argument that starts with `s3://` names an object or a prefix (see
//! [`super::s3`]).

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};
use std::pin::Pin;

use anyhow::Context;
use tokio::io::AsyncRead;

use super::s3::{S3Client, S3Object, S3Url};

/// One command-line input, before expansion.
#[derive(Debug, Clone)]
pub(crate) enum InputSpec {
    /// A file or directory, which may not exist yet in follow mode.
    Local(PathBuf),
    /// A glob pattern that names no existing path.
    Glob(String),
    /// An `s3://bucket/key` URL: an object, or the prefix of objects.
    S3(S3Url),
}

impl fmt::Display for InputSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputSpec::Local(path) => write!(f, "{}", path.display()),
            InputSpec::Glob(pattern) => f.write_str(pattern),
            InputSpec::S3(url) => write!(f, "{url}"),
        }
    }
}

impl InputSpec {
    /// Classifies one command-line argument.
    pub(crate) fn parse(argument: &OsStr) -> anyhow::Result<Self> {
        if let Some(text) = argument.to_str() {
            if text.starts_with("s3://") {
                return Ok(InputSpec::S3(S3Url::parse(text)?));
            }
            let path = Path::new(text);
            let exists = path.symlink_metadata().is_ok();
            if !exists && text.contains(['*', '?', '[']) {
                glob::Pattern::new(text)
                    .with_context(|| format!("invalid glob pattern {text:?}"))?;
                return Ok(InputSpec::Glob(text.to_string()));
            }
        }
        Ok(InputSpec::Local(PathBuf::from(argument)))
    }

    /// Parses every argument, failing on the first invalid one.
    pub(crate) fn parse_all(arguments: &[OsString]) -> anyhow::Result<Vec<Self>> {
        arguments.iter().map(|a| InputSpec::parse(a)).collect()
    }
}

/// One file or object to import.
pub(crate) enum Input {
    File(PathBuf),
    Object(S3Object),
}

impl Input {
    /// Name in messages: the path as given, or the object's URL.
    pub(crate) fn name(&self) -> String {
        match self {
            Input::File(path) => path.display().to_string(),
            Input::Object(object) => object.url(),
        }
    }

    /// Last part of the name, the input's label in the rejects file.
    pub(crate) fn file_name(&self) -> String {
        match self {
            Input::File(path) => path.file_name().map_or_else(
                || path.display().to_string(),
                |name| name.to_string_lossy().into_owned(),
            ),
            Input::Object(object) => object.file_name(),
        }
    }

    /// Size in bytes as stored, 0 when unknown.
    pub(crate) fn size(&self) -> u64 {
        match self {
            Input::File(path) => std::fs::metadata(path).map_or(0, |m| m.len()),
            Input::Object(object) => object.size(),
        }
    }

    /// Opens the content as stored (compressed or not).
    ///
    /// An object is read at the version it was listed with, so two reads
    /// return the same bytes or the second one fails.
    pub(crate) async fn open(&self) -> anyhow::Result<Pin<Box<dyn AsyncRead + Send>>> {
        match self {
            Input::File(path) => {
                let file = tokio::fs::File::open(path)
                    .await
                    .with_context(|| format!("cannot open {}", path.display()))?;
                Ok(Box::pin(file))
            }
            Input::Object(object) => object.open().await,
        }
    }
}

/// Expands one input into the files or objects it names, in a stable order.
///
/// Fails when the input names nothing: a missing path, a pattern without a
/// match, an empty prefix, or a listing that failed.
pub(crate) async fn expand(spec: &InputSpec, s3: &S3Client) -> anyhow::Result<Vec<Input>> {
    let inputs: Vec<Input> = match spec {
        InputSpec::Local(path) => {
            let metadata = std::fs::metadata(path).with_context(|| {
                format!(
                    "cannot read {}; check the path, or quote a glob pattern",
                    path.display()
                )
            })?;
            if metadata.is_dir() {
                let mut files = Vec::new();
                walk_dir(path, &mut files)
                    .with_context(|| format!("cannot list the directory {}", path.display()))?;
                files.into_iter().map(Input::File).collect()
            } else {
                vec![Input::File(path.clone())]
            }
        }
        InputSpec::Glob(pattern) => expand_glob(pattern)?.into_iter().map(Input::File).collect(),
        InputSpec::S3(url) => s3.list(url).await?.into_iter().map(Input::Object).collect(),
    };
    if inputs.is_empty() {
        anyhow::bail!(match spec {
            InputSpec::Glob(_) => "the pattern matches no regular, non-hidden file",
            InputSpec::S3(_) => "no object has this key or prefix",
            InputSpec::Local(_) => "the directory contains no regular, non-hidden file",
        });
    }
    Ok(inputs)
}

/// Lists the local files that `specs` name now, each path once, for follow
/// mode: a missing path or a pattern without a match names nothing yet.
pub(crate) fn scan_local(specs: &[InputSpec]) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for spec in specs {
        match spec {
            InputSpec::Local(path) => match std::fs::metadata(path) {
                Ok(metadata) if metadata.is_dir() => {
                    if let Err(e) = walk_dir(path, &mut files) {
                        tracing::warn!(path = %path.display(), error = %e, "cannot list a followed directory");
                    }
                }
                Ok(metadata) if metadata.is_file() => files.push(path.clone()),
                _ => {}
            },
            InputSpec::Glob(pattern) => match expand_glob(pattern) {
                Ok(matches) => files.extend(matches),
                Err(e) => tracing::warn!(pattern, error = %e, "cannot expand a followed pattern"),
            },
            InputSpec::S3(_) => {}
        }
    }
    let mut seen = std::collections::HashSet::new();
    files.retain(|path| seen.insert(path.clone()));
    files
}

/// Expands a glob pattern into files, walking the directories it matches.
///
/// A leading dot in a name must be matched by a literal dot, so `*` skips
/// hidden files as a shell does.
fn expand_glob(pattern: &str) -> anyhow::Result<Vec<PathBuf>> {
    let options = glob::MatchOptions {
        require_literal_leading_dot: true,
        ..glob::MatchOptions::default()
    };
    let paths = glob::glob_with(pattern, options)
        .with_context(|| format!("invalid glob pattern {pattern:?}"))?;
    let mut matches = Vec::new();
    for path in paths {
        let path = path.with_context(|| format!("expanding {pattern:?}"))?;
        matches.push(path);
    }
    matches.sort();
    let mut files = Vec::new();
    for path in matches {
        match std::fs::metadata(&path) {
            Ok(metadata) if metadata.is_dir() => walk_dir(&path, &mut files)
                .with_context(|| format!("cannot list the directory {}", path.display()))?,
            Ok(metadata) if metadata.is_file() => files.push(path),
            _ => {}
        }
    }
    Ok(files)
}

/// Appends the regular, non-hidden files under `dir` to `files`, in path order.
fn walk_dir(dir: &Path, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<(OsString, PathBuf)> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|entry| (entry.file_name(), entry.path()))
        .filter(|(name, _)| !name.as_encoded_bytes().starts_with(b"."))
        .collect();
    entries.sort();
    for (_, path) in entries {
        let Ok(link) = path.symlink_metadata() else {
            continue;
        };
        if link.is_dir() {
            walk_dir(&path, files)?;
        } else if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
            files.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walk_skips_hidden_entries_and_sorts() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/nested")).unwrap();
        std::fs::create_dir_all(root.join(".hidden-dir")).unwrap();
        for name in [
            "z.log",
            "a.log",
            ".hidden.log",
            "b/nested/c.log",
            ".hidden-dir/d.log",
        ] {
            std::fs::write(root.join(name), "x\n").unwrap();
        }
        let mut files = Vec::new();
        walk_dir(root, &mut files).unwrap();
        let relative: Vec<String> = files
            .iter()
            .map(|p| p.strip_prefix(root).unwrap().display().to_string())
            .collect();
        assert_eq!(relative, vec!["a.log", "b/nested/c.log", "z.log"]);
    }

    #[test]
    fn glob_expands_and_skips_dot_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for name in ["1.gz", "2.gz", ".3.gz", "4.log"] {
            std::fs::write(root.join(name), "x\n").unwrap();
        }
        let pattern = format!("{}/*.gz", root.display());
        let names: Vec<String> = expand_glob(&pattern)
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["1.gz", "2.gz"]);
    }

    #[test]
    fn arguments_are_classified() {
        let dir = tempfile::tempdir().unwrap();
        let literal = dir.path().join("a*b.log");
        std::fs::write(&literal, "x\n").unwrap();
        assert!(matches!(
            InputSpec::parse(literal.as_os_str()).unwrap(),
            InputSpec::Local(_)
        ));
        let pattern = dir.path().join("*.log");
        assert!(matches!(
            InputSpec::parse(pattern.as_os_str()).unwrap(),
            InputSpec::Glob(_)
        ));
        assert!(matches!(
            InputSpec::parse(OsStr::new("s3://bucket/logs/")).unwrap(),
            InputSpec::S3(_)
        ));
        assert!(InputSpec::parse(OsStr::new("s3:///no-bucket")).is_err());
    }
}
