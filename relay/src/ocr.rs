//! Reading scans with Tesseract: the relay's [`classifier::Ocr`].
//!
//! Images go to `tesseract stdin stdout -l LANGUAGES`; the pages of a PDF that carry no text
//! are rasterised one by one by `pdftoppm` (poppler-utils) into a private temporary directory
//! (mode 0700, removed afterwards), each page image then read by `tesseract`. Every program runs
//! without a shell, with an empty environment (plus `TESSDATA_PREFIX` when set), under
//! `prlimit --as --core=0 --cpu` (memory, no core file with the document in it, CPU seconds:
//! limits the program cannot raise), one thread each
//! (`OMP_THREAD_LIMIT=1`, so parallel classifications do not oversubscribe the CPU), and is
//! killed at its deadline. Its output is capped; its stderr is not kept (a PDF's warnings can
//! quote its content).
//!
//! Tesseract and pdftoppm are single processes (`prlimit` execs them), so killing the child
//! ends all of the work.
//!
//! When OCR is switched off or a program is missing, [`Tesseract::start`] says so once in
//! the log and returns `None`: PDFs with scanned pages are then `uninspectable`, images follow
//! `inspect.images_sensitive`.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use classifier::{Ocr, OcrError};

use crate::config::OcrConfig;

/// Largest text taken from one program run; more is a limit reached (a page of dense text
/// is about 5 KiB).
const MAX_OUTPUT_BYTES: usize = 1 << 20;
/// How often a running program is checked for its exit.
const POLL: Duration = Duration::from_millis(10);
/// Longest time a probe at start (`tesseract --list-langs`) may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(20);

/// Tesseract and pdftoppm as found at start, with the limits of `[ocr]`.
#[derive(Debug, Clone)]
pub struct Tesseract {
    tesseract: PathBuf,
    /// `None`: pdftoppm is missing, so no PDF can be read.
    pdftoppm: Option<PathBuf>,
    prlimit: PathBuf,
    languages: String,
    dpi: u32,
    timeout: Duration,
    memory_bytes: u64,
    max_pages: usize,
    max_pixels: u64,
}

impl Tesseract {
    /// Tesseract as `[ocr]` configures it, when it is switched on and its programs and
    /// languages are installed; otherwise `None`, said once in the log.
    #[must_use]
    pub fn start(config: &OcrConfig) -> Option<Self> {
        if !config.enabled {
            tracing::info!(
                "OCR is switched off: scanned PDFs count as uninspectable, images as \
                 inspect.images_sensitive says"
            );
            return None;
        }
        PrivateDir::sweep();
        match Self::probe(config) {
            Ok(tesseract) => {
                if tesseract.pdftoppm.is_none() {
                    tracing::warn!(
                        program = %config.pdftoppm,
                        "OCR: pdftoppm (poppler-utils) not found; scanned PDFs count as \
                         uninspectable"
                    );
                }
                tracing::info!(languages = %config.languages, "OCR with Tesseract ready");
                Some(tesseract)
            }
            Err(why) => {
                tracing::warn!(
                    "OCR unavailable ({why}): scanned PDFs count as uninspectable, images as \
                     inspect.images_sensitive says; install tesseract-ocr, tesseract-ocr-deu \
                     and poppler-utils"
                );
                None
            }
        }
    }

    fn probe(config: &OcrConfig) -> Result<Self, String> {
        let tesseract = find_program(&config.tesseract)
            .ok_or_else(|| format!("{} not found", config.tesseract))?;
        let prlimit = find_program("prlimit").ok_or("prlimit (util-linux) not found")?;
        let this = Self {
            tesseract,
            pdftoppm: find_program(&config.pdftoppm),
            prlimit,
            languages: config.languages.clone(),
            dpi: config.dpi,
            timeout: config.timeout,
            memory_bytes: config.memory_mb.saturating_mul(1 << 20),
            max_pages: config.max_pages,
            max_pixels: config.max_megapixels.saturating_mul(1_000_000),
        };
        let listed = this
            .run(
                &this.tesseract,
                &["--list-langs".as_ref()],
                None,
                Instant::now() + PROBE_TIMEOUT,
            )
            .map_err(|e| format!("tesseract --list-langs: {e}; is ocr.memory_mb too small?"))?;
        let listed = String::from_utf8_lossy(&listed);
        let missing: Vec<&str> = config
            .languages
            .split('+')
            .filter(|lang| !listed.lines().any(|l| l.trim() == *lang))
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "Tesseract language data missing: {}",
                missing.join(", ")
            ));
        }
        Ok(this)
    }

    /// This OCR with every run ending by `deadline` at the latest: the classification of
    /// one message has a time limit of its own, and work past it would be wasted.
    #[must_use]
    pub fn until(&self, deadline: Instant) -> Until<'_> {
        Until {
            ocr: self,
            deadline,
        }
    }

    fn deadline(&self, limit: Option<Instant>) -> Instant {
        let own = Instant::now() + self.timeout;
        limit.map_or(own, |l| l.min(own))
    }

    fn read_image(&self, bytes: &[u8], deadline: Instant) -> Result<String, OcrError> {
        if !is_raster_image(bytes) {
            return Err(OcrError::Unreadable);
        }
        // Refused before decoding: a small file can declare a huge canvas.
        if let Some((width, height)) = dimensions(bytes)
            && width.saturating_mul(height) > self.max_pixels
        {
            return Err(OcrError::Limit(format!(
                "image of {width}x{height} pixels, more than {} megapixels",
                self.max_pixels / 1_000_000
            )));
        }
        let args = ["stdin", "stdout", "-l", &self.languages].map(std::ffi::OsStr::new);
        let text = self.run(&self.tesseract, &args, Some(bytes), deadline)?;
        Ok(String::from_utf8_lossy(&text).into_owned())
    }

    fn read_pdf(&self, bytes: &[u8], pages: &[u32], deadline: Instant) -> Result<String, OcrError> {
        let Some(pdftoppm) = &self.pdftoppm else {
            return Err(OcrError::Unavailable);
        };
        if pages.len() > self.max_pages {
            return Err(OcrError::Limit(format!(
                "{} scanned pages, more than {} to read",
                pages.len(),
                self.max_pages
            )));
        }
        let dir = PrivateDir::new().map_err(|err| {
            tracing::error!(error = %err, "OCR: cannot create a private temporary directory");
            OcrError::Failed
        })?;
        let input = dir.path.join("scan.pdf");
        write_private(&input, bytes).map_err(|err| {
            tracing::error!(error = %err, "OCR: cannot write the PDF to rasterise");
            OcrError::Failed
        })?;
        let dpi = self.dpi.to_string();
        let mut text = String::new();
        // One page at a time: at most one page image on disk, and only the pages asked for.
        for page in pages {
            let number = page.to_string();
            let prefix = dir.path.join(format!("page-{page}"));
            let args = [
                "-r".as_ref(),
                dpi.as_ref(),
                "-gray".as_ref(),
                "-png".as_ref(),
                "-singlefile".as_ref(),
                "-f".as_ref(),
                number.as_ref(),
                "-l".as_ref(),
                number.as_ref(),
                input.as_os_str(),
                prefix.as_os_str(),
            ];
            self.run(pdftoppm, &args, None, deadline)?;
            let image = prefix.with_extension("png");
            let args = [
                image.as_os_str(),
                "stdout".as_ref(),
                "-l".as_ref(),
                self.languages.as_ref(),
            ];
            let page_text = self.run(&self.tesseract, &args, None, deadline)?;
            // Gone before the next page; the directory goes at the end whatever happens.
            let _ = std::fs::remove_file(&image);
            text.push_str(&String::from_utf8_lossy(&page_text));
            text.push('\n');
        }
        Ok(text)
    }

    /// Runs `program ARGS` under the memory limit until `deadline`, with `stdin` fed in;
    /// returns its stdout.
    fn run(
        &self,
        program: &Path,
        args: &[&std::ffi::OsStr],
        stdin: Option<&[u8]>,
        deadline: Instant,
    ) -> Result<Vec<u8>, OcrError> {
        if Instant::now() >= deadline {
            return Err(OcrError::Timeout);
        }
        let mut command = Command::new(&self.prlimit);
        command
            .arg(format!("--as={}", self.memory_bytes))
            // No core file: a crashing program's memory holds the document.
            .arg("--core=0")
            // CPU seconds as a backstop to the deadline: a program left behind when the
            // daemon itself is killed still ends.
            .arg(format!(
                "--cpu={}",
                self.timeout.as_secs().saturating_add(1)
            ))
            .arg("--")
            .arg(program)
            .args(args)
            .env_clear()
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(prefix) = std::env::var_os("TESSDATA_PREFIX") {
            command.env("TESSDATA_PREFIX", prefix);
        }
        let mut child = command.spawn().map_err(|err| {
            tracing::error!(program = %program.display(), error = %err, "OCR: cannot start");
            OcrError::Failed
        })?;
        let input = child.stdin.take();
        let mut output = child.stdout.take().ok_or(OcrError::Failed)?;
        let overflowed = AtomicBool::new(false);
        std::thread::scope(|scope| {
            // Fed and drained on their own threads, so a full pipe never blocks the wait.
            if let (Some(mut pipe), Some(bytes)) = (input, stdin) {
                scope.spawn(move || {
                    // A program that stops reading (killed, or done) closes the pipe: the
                    // exit status tells what happened.
                    let _ = pipe.write_all(bytes);
                });
            }
            let reader = scope.spawn(|| {
                let mut out = Vec::new();
                let read = (&mut output)
                    .take(MAX_OUTPUT_BYTES as u64 + 1)
                    .read_to_end(&mut out);
                // No longer drained, the program would block on its full pipe until the
                // deadline: it is stopped at once instead.
                if out.len() > MAX_OUTPUT_BYTES {
                    overflowed.store(true, Ordering::Relaxed);
                }
                (read, out)
            });
            let status = loop {
                match child.try_wait() {
                    Ok(Some(status)) => break Ok(status),
                    Ok(None) if overflowed.load(Ordering::Relaxed) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Err(OcrError::Limit("too much OCR text".to_owned()));
                    }
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Err(OcrError::Timeout);
                    }
                    Ok(None) => std::thread::sleep(POLL),
                    Err(_) => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break Err(OcrError::Failed);
                    }
                }
            };
            let (read, out) = reader.join().map_err(|_| OcrError::Failed)?;
            let status = status?;
            if out.len() > MAX_OUTPUT_BYTES {
                return Err(OcrError::Limit("too much OCR text".to_owned()));
            }
            if read.is_err() || !status.success() {
                // The status only: stderr is not kept (see the module comment).
                tracing::warn!(program = %program.display(), %status, "OCR program failed");
                return Err(OcrError::Failed);
            }
            Ok(out)
        })
    }
}

impl Ocr for Tesseract {
    fn image(&self, bytes: &[u8]) -> Result<String, OcrError> {
        self.read_image(bytes, self.deadline(None))
    }

    fn pdf(&self, bytes: &[u8], pages: &[u32]) -> Result<String, OcrError> {
        self.read_pdf(bytes, pages, self.deadline(None))
    }
}

/// [`Tesseract`] bounded by the deadline of one message's classification.
#[derive(Debug, Clone, Copy)]
pub struct Until<'a> {
    ocr: &'a Tesseract,
    deadline: Instant,
}

impl Ocr for Until<'_> {
    fn image(&self, bytes: &[u8]) -> Result<String, OcrError> {
        self.ocr
            .read_image(bytes, self.ocr.deadline(Some(self.deadline)))
    }

    fn pdf(&self, bytes: &[u8], pages: &[u32]) -> Result<String, OcrError> {
        self.ocr
            .read_pdf(bytes, pages, self.ocr.deadline(Some(self.deadline)))
    }
}

/// Whether `bytes` start like an image Tesseract (Leptonica) reads: PNG, JPEG, GIF, BMP,
/// TIFF, WebP, PNM. Anything else (SVG, HEIC, a mislabelled file) is not handed over.
fn is_raster_image(bytes: &[u8]) -> bool {
    const MAGIC: &[&[u8]] = &[
        b"\x89PNG\r\n\x1a\n",
        b"\xFF\xD8\xFF",
        b"GIF87a",
        b"GIF89a",
        b"BM",
        b"II*\0",
        b"MM\0*",
        b"P1",
        b"P2",
        b"P3",
        b"P4",
        b"P5",
        b"P6",
    ];
    let webp = bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP";
    webp || MAGIC.iter().any(|m| bytes.starts_with(m))
}

/// Width and height an image declares in its header: PNG (IHDR), JPEG (the first SOF
/// segment), GIF (logical screen), BMP (DIB header). `None` for other formats or a header
/// that cannot be read; those are bounded by the memory limit and the timeout alone.
fn dimensions(bytes: &[u8]) -> Option<(u64, u64)> {
    let be16 = |at: usize| {
        Some(u64::from(u16::from_be_bytes(
            bytes.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let le16 = |at: usize| {
        Some(u64::from(u16::from_le_bytes(
            bytes.get(at..at + 2)?.try_into().ok()?,
        )))
    };
    let be32 = |at: usize| {
        Some(u64::from(u32::from_be_bytes(
            bytes.get(at..at + 4)?.try_into().ok()?,
        )))
    };
    let le32 = |at: usize| {
        Some(u64::from(
            i32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?).unsigned_abs(),
        ))
    };
    if bytes.starts_with(b"\x89PNG") {
        return Some((be32(16)?, be32(20)?));
    }
    if bytes.starts_with(b"GIF8") {
        return Some((le16(6)?, le16(8)?));
    }
    if bytes.starts_with(b"BM") {
        return Some((le32(18)?, le32(22)?));
    }
    if bytes.starts_with(b"\xFF\xD8") {
        // Segments up to the frame header (ITU T.81 B.2): marker, length, contents.
        let mut at = 2;
        loop {
            if *bytes.get(at)? != 0xFF {
                return None;
            }
            let marker = *bytes.get(at + 1)?;
            match marker {
                0xFF => at += 1,
                0x01 | 0xD0..=0xD8 => at += 2,
                0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF => {
                    return Some((be16(at + 7)?, be16(at + 5)?));
                }
                0xDA | 0xD9 => return None,
                _ => at += 2 + usize::try_from(be16(at + 2)?).ok()?,
            }
        }
    }
    None
}

/// `name` as given when it holds a `/`, else looked up on `PATH`; `None` when there is no
/// such executable file. Programs run with an empty environment, so they are found here.
fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let path = PathBuf::from(name);
        return executable(&path).then_some(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| executable(p))
}

/// A directory only this user can enter, removed with everything in it when dropped.
struct PrivateDir {
    path: PathBuf,
}

/// Prefix of the private directories: `ratspost-ocr-PID-RANDOM`.
const DIR_PREFIX: &str = "ratspost-ocr-";

impl PrivateDir {
    fn new() -> std::io::Result<Self> {
        use std::os::unix::fs::DirBuilderExt as _;
        let path = std::env::temp_dir().join(format!(
            "{DIR_PREFIX}{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        ));
        // `create` fails when the name exists: nobody can have prepared it for us.
        std::fs::DirBuilder::new().mode(0o700).create(&path)?;
        Ok(Self { path })
    }
}

impl PrivateDir {
    /// Removes the directories a killed process left behind (a scanned PDF in each): those
    /// of ours whose process is gone. Without systemd's PrivateTmp they would stay.
    fn sweep() {
        let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(DIR_PREFIX))
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<u32>().ok())
            else {
                continue;
            };
            let alive = Path::new("/proc").join(pid.to_string()).exists();
            if !alive && let Err(err) = std::fs::remove_dir_all(entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %err, "OCR: cannot remove a left-behind temporary directory");
            }
        }
    }
}

impl Drop for PrivateDir {
    fn drop(&mut self) {
        if let Err(err) = std::fs::remove_dir_all(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %err, "OCR: cannot remove temporary directory");
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?
        .write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_raster_images_are_handed_over() {
        assert!(is_raster_image(b"\x89PNG\r\n\x1a\n...."));
        assert!(is_raster_image(b"\xFF\xD8\xFF\xE0"));
        assert!(is_raster_image(b"RIFF\0\0\0\0WEBPVP8 "));
        assert!(!is_raster_image(
            b"<svg xmlns=\"http://www.w3.org/2000/svg\">"
        ));
        assert!(!is_raster_image(b"\0\0\0\x18ftypheic"));
        assert!(!is_raster_image(b""));
    }

    #[test]
    fn image_headers_give_the_canvas_size() {
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&40_000u32.to_be_bytes());
        png.extend_from_slice(&30_000u32.to_be_bytes());
        assert_eq!(dimensions(&png), Some((40_000, 30_000)));
        let gif = b"GIF89a\x80\x02\xe0\x01";
        assert_eq!(dimensions(gif), Some((640, 480)));
        let mut bmp = b"BM".to_vec();
        bmp.resize(18, 0);
        bmp.extend_from_slice(&800i32.to_le_bytes());
        bmp.extend_from_slice(&(-600i32).to_le_bytes());
        assert_eq!(dimensions(&bmp), Some((800, 600)));
        // JPEG: SOI, an APP0 segment, then SOF0 with height 1200 and width 1600.
        let jpeg = b"\xFF\xD8\xFF\xE0\x00\x04ab\xFF\xC0\x00\x11\x08\x04\xB0\x06\x40\x03";
        assert_eq!(dimensions(jpeg), Some((1600, 1200)));
        assert_eq!(dimensions(b"\xFF\xD8\xFF"), None);
        assert_eq!(dimensions(b"II*\0"), None);
    }

    #[test]
    fn an_image_over_the_pixel_limit_is_not_decoded() {
        // 40000 x 30000 declared in a few bytes; Tesseract (here: nonexistent) is not run.
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
        png.extend_from_slice(&40_000u32.to_be_bytes());
        png.extend_from_slice(&30_000u32.to_be_bytes());
        let later = Instant::now() + Duration::from_secs(60);
        let result = runner().read_image(&png, later);
        assert!(matches!(result, Err(OcrError::Limit(_))), "{result:?}");
    }

    #[test]
    fn programs_are_found_on_the_path_or_by_path() {
        assert!(find_program("sh").is_some());
        assert_eq!(find_program("/bin/sh"), Some(PathBuf::from("/bin/sh")));
        assert!(find_program("ratspost-no-such-program").is_none());
        assert!(find_program("/nonexistent/tesseract").is_none());
    }

    #[test]
    fn a_missing_program_makes_ocr_unavailable() {
        let config = OcrConfig {
            tesseract: "/nonexistent/tesseract".to_owned(),
            ..crate::config::Config::builtin().ocr
        };
        assert!(Tesseract::start(&config).is_none());
        let off = OcrConfig {
            enabled: false,
            ..crate::config::Config::builtin().ocr
        };
        assert!(Tesseract::start(&off).is_none());
    }

    /// The runner with generous limits, for programs other than Tesseract.
    fn runner() -> Tesseract {
        Tesseract {
            tesseract: PathBuf::from("/nonexistent"),
            pdftoppm: None,
            prlimit: find_program("prlimit").expect("prlimit (util-linux)"),
            languages: "deu".to_owned(),
            dpi: 300,
            timeout: Duration::from_secs(60),
            memory_bytes: 512 << 20,
            max_pages: 1,
            max_pixels: 1_000_000,
        }
    }

    fn program(name: &str) -> PathBuf {
        find_program(name).unwrap_or_else(|| panic!("{name} on PATH"))
    }

    #[test]
    fn input_is_fed_and_output_read_without_blocking() {
        let later = Instant::now() + Duration::from_secs(60);
        let cat = program("cat");
        assert_eq!(
            runner().run(&cat, &[], Some(b"Steuer-ID"), later),
            Ok(b"Steuer-ID".to_vec())
        );
        // More than a pipe holds, both ways.
        let big = vec![b'x'; MAX_OUTPUT_BYTES / 2];
        assert_eq!(runner().run(&cat, &[], Some(&big), later), Ok(big));
    }

    #[test]
    fn endless_output_is_cut_off_at_once() {
        // `yes` never ends: only the output cap stops it before the deadline.
        let later = Instant::now() + Duration::from_secs(3600);
        let result = runner().run(&program("yes"), &[], None, later);
        assert!(matches!(result, Err(OcrError::Limit(_))), "{result:?}");
    }

    #[test]
    fn a_program_is_killed_at_its_deadline() {
        let soon = Instant::now() + Duration::from_millis(200);
        let result = runner().run(&program("sleep"), &["3600".as_ref()], None, soon);
        assert_eq!(result, Err(OcrError::Timeout));
    }

    #[test]
    fn programs_run_without_core_files_and_with_a_cpu_limit() {
        let later = Instant::now() + Duration::from_secs(60);
        let args = ["-c".as_ref(), "ulimit -c; ulimit -t; ulimit -v".as_ref()];
        let out = runner()
            .run(&program("sh"), &args, None, later)
            .expect("sh");
        // Core files 0; CPU seconds: the timeout and one; address space in KiB.
        assert_eq!(String::from_utf8_lossy(&out), "0\n61\n524288\n");
    }

    #[test]
    fn a_failing_program_is_a_failure() {
        let later = Instant::now() + Duration::from_secs(60);
        assert_eq!(
            runner().run(&program("false"), &[], None, later),
            Err(OcrError::Failed)
        );
    }

    #[test]
    fn directories_of_dead_processes_are_swept_and_live_ones_kept() {
        // PID 0 is never a process; this process is alive.
        let dead =
            std::env::temp_dir().join(format!("{DIR_PREFIX}0-{:016x}", rand::random::<u64>()));
        std::fs::create_dir(&dead).expect("dir");
        // Another test's start may sweep it first: either way it must be gone.
        let _ = std::fs::write(dead.join("scan.pdf"), b"%PDF");
        let live = PrivateDir::new().expect("dir");
        PrivateDir::sweep();
        assert!(!dead.exists());
        assert!(live.path.exists());
    }

    #[test]
    fn a_private_directory_is_0700_and_removed() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = PrivateDir::new().expect("dir");
        let path = dir.path.clone();
        let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        write_private(&path.join("x"), b"y").expect("write");
        drop(dir);
        assert!(!path.exists());
    }
}
