//! Progress on stderr: a bar per file on a terminal (bytes, rate, time left), plain lines
//! otherwise (CI logs), nothing with `--quiet`.

use std::io::IsTerminal as _;
use std::sync::atomic::{AtomicU64, Ordering};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bar,
    Lines,
    Quiet,
}

impl Mode {
    /// A bar when stderr is a terminal, plain lines otherwise.
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            Self::Quiet
        } else if std::io::stderr().is_terminal() {
            Self::Bar
        } else {
            Self::Lines
        }
    }
}

pub struct Progress {
    mode: Mode,
    multi: MultiProgress,
}

impl Progress {
    pub fn new(mode: Mode) -> Self {
        let target = if mode == Mode::Bar {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        };
        Self {
            mode,
            multi: MultiProgress::with_draw_target(target),
        }
    }

    /// Progress of one file of `size` bytes.
    pub fn file(&self, name: &str, size: u64) -> FileProgress {
        let bar = (self.mode == Mode::Bar).then(|| {
            let bar = self.multi.add(ProgressBar::new(size));
            let style = ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} {eta} left {msg}",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(name.to_owned());
            bar
        });
        FileProgress {
            bar,
            lines: self.mode == Mode::Lines,
            name: name.to_owned(),
            size,
            done: AtomicU64::new(0),
            decile: AtomicU64::new(0),
            last: std::sync::Mutex::new(String::new()),
        }
    }

    /// A line above the bars (or on stderr without them), unless quiet.
    pub fn println(&self, line: &str) {
        match self.mode {
            Mode::Bar => {
                let _ = self.multi.println(line);
            }
            Mode::Lines => eprintln!("{line}"),
            Mode::Quiet => {}
        }
    }
}

pub struct FileProgress {
    bar: Option<ProgressBar>,
    lines: bool,
    name: String,
    size: u64,
    done: AtomicU64,
    /// The last tenth reported as a plain line.
    decile: AtomicU64,
    /// The last step reported as a plain line.
    last: std::sync::Mutex<String>,
}

impl FileProgress {
    /// The file's current step; as a plain line only when it changed.
    pub fn message(&self, msg: &str) {
        if let Some(bar) = &self.bar {
            bar.set_message(msg.to_owned());
        } else if self.lines {
            let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
            if *last != msg {
                msg.clone_into(&mut last);
                eprintln!("{}: {msg}", self.name);
            }
        }
    }

    /// `bytes` more are in S3 (sent, or found held when resuming).
    pub fn add(&self, bytes: u64) {
        let done = self.done.fetch_add(bytes, Ordering::Relaxed) + bytes;
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
        } else if self.lines && self.size > 0 {
            let tenth = done * 10 / self.size;
            if self.decile.fetch_max(tenth, Ordering::Relaxed) < tenth {
                eprintln!(
                    "{}: {}% ({done} of {} bytes)",
                    self.name,
                    tenth * 10,
                    self.size
                );
            }
        }
    }

    /// Counts `bytes` already in S3 before this run, without reporting them as sent now.
    pub fn skip(&self, bytes: u64) {
        self.done.fetch_add(bytes, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.inc(bytes);
            bar.reset_eta();
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
