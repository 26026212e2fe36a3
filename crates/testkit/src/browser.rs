//! Loading a page in a real headless Chromium, for tests of the pages ballast writes.
//!
//! [`load`] runs `chromium --headless --dump-dom file://PAGE` with a fresh profile in a temporary
//! folder and returns the DOM as it stands once the page has loaded and its scripts have run,
//! with the messages the page wrote to the console. Chromium is found by [`chromium`]: the
//! `BALLAST_CHROMIUM` variable, else `chromium`, `chromium-browser`, `google-chrome` or
//! `google-chrome-stable` on `PATH`. `scripts/test.sh` installs it (or says how) and sets
//! `BALLAST_CHROMIUM`; without one [`load`] fails, so a browser test fails rather than skips.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The names looked up on `PATH`, in order.
const NAMES: &[&str] = &[
    "chromium",
    "chromium-browser",
    "google-chrome",
    "google-chrome-stable",
];

/// How long a load may take before Chromium is killed.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// The virtual time the page gets to load and run its scripts (milliseconds; virtual time
/// runs ahead while the page is idle, so an idle page does not wait this long).
const VIRTUAL_TIME_BUDGET_MS: u32 = 10_000;

/// A page as Chromium loaded it.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The serialised DOM after `load` (`--dump-dom`): attribute values and text escaped the
    /// way the HTML serialiser does (`&amp;`, `&lt;`, `&gt;`, `&quot;` in attributes, `&nbsp;`).
    pub dom: String,
    /// Uncaught exceptions and unhandled rejections (console messages starting "Uncaught").
    pub console_errors: Vec<String>,
    /// Every console message, in order. Chromium logs all console levels the same way on
    /// stderr, so `console.error` cannot be told from `console.log` here: pages should record
    /// their own errors in the DOM too.
    pub console: Vec<String>,
    /// Chromium's whole stderr (its own warnings included: D-Bus, GPU, ...).
    pub stderr: String,
    /// How long the load took.
    pub elapsed: Duration,
}

impl Loaded {
    /// The value of attribute `name` on the first `<TAG` element of the DOM, unescaped; e.g.
    /// `attr("body", "data-loaded")`.
    pub fn attr(&self, tag: &str, name: &str) -> Option<String> {
        let open = format!("<{tag}");
        let mut from = 0;
        while let Some(i) = self.dom[from..].find(&open) {
            let start = from + i + open.len();
            let next = self.dom[start..].chars().next();
            if matches!(next, Some(c) if c == '>' || c == '/' || c.is_ascii_whitespace()) {
                let end = start + self.dom[start..].find('>')?;
                return attr_in(&self.dom[start..end], name);
            }
            from = start;
        }
        None
    }

    /// `attr("body", "data-NAME")`: what the page's script recorded on `document.body.dataset`.
    pub fn body_data(&self, name: &str) -> Option<String> {
        self.attr("body", &format!("data-{name}"))
    }

    /// Every value of attribute `name` in the DOM, in document order, unescaped (e.g. all
    /// `data-photo` values).
    pub fn attr_values(&self, name: &str) -> Vec<String> {
        let needle = format!(" {name}=\"");
        self.dom
            .match_indices(&needle)
            .filter_map(|(i, _)| {
                let rest = &self.dom[i + needle.len()..];
                rest.find('"').map(|e| unescape(&rest[..e]))
            })
            .collect()
    }
}

/// The value of `name` in the attribute text of one start tag (serialised by Chromium: values
/// always double-quoted).
fn attr_in(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let mut from = 0;
    while let Some(i) = tag[from..].find(&needle) {
        let at = from + i;
        let before = tag[..at].chars().next_back();
        if before.is_none_or(|c| c.is_ascii_whitespace()) {
            let rest = &tag[at + needle.len()..];
            return rest.find('"').map(|e| unescape(&rest[..e]));
        }
        from = at + needle.len();
    }
    // A boolean attribute (`<body hidden>`) or one with an empty value.
    tag.split_ascii_whitespace()
        .any(|a| a == name)
        .then(String::new)
}

/// Undoes the HTML serialiser's escapes (and numeric character references).
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest.find(';').filter(|&e| e <= 10);
        let decoded = end.and_then(|e| {
            let ent = &rest[1..e];
            let c = match ent {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => ent
                    .strip_prefix("#x")
                    .or_else(|| ent.strip_prefix("#X"))
                    .map(|h| u32::from_str_radix(h, 16).ok())
                    .unwrap_or_else(|| ent.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, e))
        });
        match decoded {
            Some((c, e)) => {
                out.push(c);
                rest = &rest[e + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where Chromium is, or why none was found.
fn find() -> Result<PathBuf, String> {
    if let Some(v) = std::env::var_os("BALLAST_CHROMIUM").filter(|v| !v.is_empty()) {
        let p = PathBuf::from(&v);
        let p = if p.components().count() == 1 {
            on_path(&p).unwrap_or(p)
        } else {
            p
        };
        return if is_executable(&p) {
            Ok(p)
        } else {
            Err(format!(
                "BALLAST_CHROMIUM={} is not an executable file; point it at a Chromium or \
                 Chrome binary, or unset it and run scripts/test.sh, which installs Chromium",
                p.display()
            ))
        };
    }
    NAMES
        .iter()
        .find_map(|n| on_path(Path::new(n)))
        .ok_or_else(|| {
            format!(
                "no Chromium found (looked for {} on PATH and BALLAST_CHROMIUM): run the tests \
                 with scripts/test.sh, which installs it (apt-get install chromium), or set \
                 BALLAST_CHROMIUM to a Chromium or Chrome binary",
                NAMES.join(", ")
            )
        })
}

fn on_path(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Chromium's path: `BALLAST_CHROMIUM` if set, else the first of `chromium`,
/// `chromium-browser`, `google-chrome`, `google-chrome-stable` on `PATH`.
pub fn chromium() -> Option<PathBuf> {
    find().ok()
}

/// Loads `page` (a local HTML file) in headless Chromium and returns its DOM after `load`.
/// Fails when no Chromium is found (saying how to get one), when Chromium fails or takes
/// longer than [`TIMEOUT`] (it is killed), or when it prints no DOM.
pub fn load(page: &Path) -> Result<Loaded, String> {
    let bin = find()?;
    let page = std::fs::canonicalize(page).map_err(|e| format!("page {}: {e}", page.display()))?;
    let url = file_url(&page);
    let tmp = tempfile::Builder::new()
        .prefix("ballast-chromium-")
        .tempdir()
        .map_err(|e| format!("temporary folder: {e}"))?;
    let (out_path, err_path) = (tmp.path().join("dom.html"), tmp.path().join("stderr.txt"));
    let file = |p: &Path| File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut cmd = Command::new(&bin);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-default-apps",
        "--disable-sync",
        "--no-first-run",
        "--no-default-browser-check",
        "--mute-audio",
        "--hide-scrollbars",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1280,1024",
    ])
    .arg(format!(
        "--user-data-dir={}",
        tmp.path().join("profile").display()
    ))
    .arg(format!("--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}"))
    .arg("--dump-dom")
    .arg(&url)
    .env("HOME", tmp.path())
    .env("XDG_CONFIG_HOME", tmp.path().join("config"))
    .env("XDG_CACHE_HOME", tmp.path().join("cache"))
    .stdin(Stdio::null())
    // Files rather than pipes: a helper process that outlives the browser cannot hold them.
    .stdout(file(&out_path)?)
    .stderr(file(&err_path)?);
    // Its own process group, so that a timeout kills the renderer and GPU processes too.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let pgid = child.id();
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break Ok(s),
            Ok(None) if started.elapsed() > TIMEOUT => {
                kill_group(pgid);
                let _ = child.wait();
                break Err(format!(
                    "{} did not finish loading {url} within {} s (killed)",
                    bin.display(),
                    TIMEOUT.as_secs()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => {
                kill_group(pgid);
                break Err(format!("waiting for {}: {e}", bin.display()));
            }
        }
    };
    // Whatever is left of the browser's helpers.
    kill_group(pgid);
    let elapsed = started.elapsed();
    let read =
        |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap_or_default()).into_owned();
    let (dom, stderr) = (read(&out_path), read(&err_path));
    let tail = || {
        let lines: Vec<&str> = stderr.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    };
    let status = status.map_err(|e| format!("{e}\nstderr (end):\n{}", tail()))?;
    if !status.success() {
        return Err(format!(
            "{} {url} failed ({status}); stderr (end):\n{}",
            bin.display(),
            tail()
        ));
    }
    if !dom.contains("<html") {
        return Err(format!(
            "{} printed no DOM for {url}; stderr (end):\n{}",
            bin.display(),
            tail()
        ));
    }
    let console = console_messages(&stderr);
    let console_errors = console
        .iter()
        .filter(|m| m.starts_with("Uncaught"))
        .cloned()
        .collect();
    Ok(Loaded {
        dom,
        console_errors,
        console,
        stderr,
        elapsed,
    })
}

fn kill_group(pgid: u32) {
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{pgid}")])
        .stderr(Stdio::null())
        .status();
}

/// `file://` URL of an absolute path, percent-encoding what a URL path cannot hold.
fn file_url(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut url = String::from("file://");
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            url.push(b as char);
        } else {
            url.push_str(&format!("%{b:02X}"));
        }
    }
    url
}

/// The console messages in Chromium's log: lines like
/// `[pid:tid:time:INFO:CONSOLE:12] "message", source: file:///page.html (12)` (older versions:
/// `INFO:CONSOLE(12)`).
fn console_messages(stderr: &str) -> Vec<String> {
    stderr
        .lines()
        .filter_map(|l| {
            let at = l.find(":CONSOLE")?;
            let rest = &l[at..];
            let msg = &rest[rest.find("] ")? + 2..];
            let msg = match msg.rfind("\", source: ") {
                Some(e) if msg.starts_with('"') => &msg[1..e],
                _ => msg,
            };
            Some(msg.to_string())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_lines_are_parsed() {
        let log = "[1:1:1203/170932.596987:ERROR:dbus/bus.cc:405] Failed to connect\n\
                   [1:1:1203/170933.450984:INFO:CONSOLE:1] \"boom\", source: file:///tmp/p.html (1)\n\
                   [1:1:1203/170933.454083:INFO:CONSOLE(7)] \"Uncaught ReferenceError: f is not defined\", source: file:///tmp/p.html (7)\n";
        let m = console_messages(log);
        assert_eq!(m, ["boom", "Uncaught ReferenceError: f is not defined"]);
    }

    #[test]
    fn attributes_are_read_and_unescaped() {
        let l = Loaded {
            dom: "<html><head></head><body class=\"x\" data-loaded=\"ok\" data-errors=\"\">\
                  <section class=\"photo\" data-photo=\"a&lt;b&gt;&amp;&quot;c&quot;'.jpg\"></section>\
                  <section class=\"photo\" data-photo=\"&#x00ce;le&nbsp;&#233;\"></section></body></html>"
                .into(),
            console_errors: vec![],
            console: vec![],
            stderr: String::new(),
            elapsed: Duration::ZERO,
        };
        assert_eq!(l.body_data("loaded").as_deref(), Some("ok"));
        assert_eq!(l.body_data("errors").as_deref(), Some(""));
        assert_eq!(l.body_data("missing"), None);
        assert_eq!(l.attr("body", "class").as_deref(), Some("x"));
        assert_eq!(
            l.attr_values("data-photo"),
            ["a<b>&\"c\"'.jpg", "Île\u{a0}é"]
        );
        assert_eq!(unescape("&bogus; & &amp;amp;"), "&bogus; & &amp;");
    }

    #[test]
    fn file_urls_are_percent_encoded() {
        assert_eq!(
            file_url(Path::new("/tmp/a b/é#?.html")),
            "file:///tmp/a%20b/%C3%A9%23%3F.html"
        );
    }
}
