//! Just enough CSV (RFC 4180) for the scorer's files: quoting on write, and parsing records
//! on read (class maps, and the watch log read back after a restart).
//!
//! Photo names and class names are whatever the file system and the user allow, line breaks
//! included, so a field with a line break, quote, comma, tab or any other control character
//! is quoted, and a quoted field may span lines when read back.

/// `field` quoted if it holds a comma, quote, control character (line breaks and tabs
/// included) or leading/trailing space.
pub fn quote(field: &str) -> String {
    let needs = field
        .chars()
        .any(|c| c == ',' || c == '"' || c.is_control())
        || field.starts_with(' ')
        || field.ends_with(' ');
    if needs {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Joins fields into one CSV record (without the final line break).
pub fn join<S: AsRef<str>>(fields: &[S]) -> String {
    fields
        .iter()
        .map(|f| quote(f.as_ref()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits one CSV record (which may hold quoted line breaks) into fields.
pub fn parse_line(line: &str) -> Result<Vec<String>, String> {
    let mut r = Records::new(line, false);
    match r.next() {
        None => Ok(vec![String::new()]),
        Some(Ok(rec)) if r.rest().is_empty() => Ok(rec.fields),
        Some(Ok(_)) => Err("more than one record".into()),
        Some(Err(e)) => Err(e.message),
    }
}

/// One record read from a CSV text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// 1-based line on which the record starts.
    pub line: usize,
    pub fields: Vec<String>,
    /// Byte offset just past the record's line break (or the end of the text).
    pub end: usize,
    /// Whether the record ended with a line break (a last record without one may be torn).
    pub terminated: bool,
}

/// A record that cannot be parsed; `end` is where reading stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordError {
    pub line: usize,
    pub message: String,
}

/// The records of a CSV text, in order. Line breaks are `\n` or `\r\n` outside quotes. With
/// `comments`, lines that start (outside a record) with `#`, and blank lines, are skipped.
pub struct Records<'a> {
    text: &'a str,
    pos: usize,
    line: usize,
    comments: bool,
    failed: bool,
}

impl<'a> Records<'a> {
    pub fn new(text: &'a str, comments: bool) -> Self {
        Records {
            text,
            pos: 0,
            line: 1,
            comments,
            failed: false,
        }
    }

    /// What is left unread.
    pub fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    /// Skips blank and comment lines at the current position.
    fn skip_comments(&mut self) {
        while self.pos < self.text.len() {
            let rest = &self.text[self.pos..];
            let eol = rest.find('\n').map(|i| i + 1).unwrap_or(rest.len());
            let l = rest[..eol].trim();
            if l.is_empty() || l.starts_with('#') {
                self.pos += eol;
                self.line += 1;
            } else {
                break;
            }
        }
    }
}

impl Iterator for Records<'_> {
    type Item = Result<Record, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.comments {
            self.skip_comments();
        }
        if self.pos >= self.text.len() {
            return None;
        }
        let start_line = self.line;
        let text: &str = self.text;
        let bytes = text.as_bytes();
        let mut fields = Vec::new();
        let mut cur = String::new();
        let mut quoted = false;
        let mut at_start = true;
        let mut i = self.pos;
        // Fields are copied a run of plain bytes at a time; the delimiters are all ASCII, so
        // every run boundary is a char boundary.
        let mut run_start = i;
        let fail = |s: &mut Self, message: String| {
            s.failed = true;
            Some(Err(RecordError {
                line: start_line,
                message,
            }))
        };
        loop {
            if i >= bytes.len() {
                if quoted {
                    return fail(
                        self,
                        format!("unclosed quote in field {}", fields.len() + 1),
                    );
                }
                cur.push_str(&text[run_start..i]);
                fields.push(cur);
                self.pos = i;
                return Some(Ok(Record {
                    line: start_line,
                    fields,
                    end: i,
                    terminated: false,
                }));
            }
            let b = bytes[i];
            if quoted {
                match b {
                    b'"' => {
                        cur.push_str(&text[run_start..i]);
                        if bytes.get(i + 1) == Some(&b'"') {
                            cur.push('"');
                            i += 2;
                        } else {
                            quoted = false;
                            i += 1;
                            match bytes.get(i) {
                                None | Some(b',') | Some(b'\n') => {}
                                Some(b'\r') if bytes.get(i + 1) == Some(&b'\n') => {}
                                Some(_) => {
                                    let other = text[i..].chars().next().unwrap_or(' ');
                                    return fail(
                                        self,
                                        format!(
                                            "unexpected {other:?} after a closing quote (field {})",
                                            fields.len() + 1
                                        ),
                                    );
                                }
                            }
                        }
                        run_start = i;
                    }
                    b'\n' => {
                        self.line += 1;
                        i += 1;
                    }
                    _ => i += 1,
                }
                continue;
            }
            match b {
                b'"' if at_start => {
                    quoted = true;
                    at_start = false;
                    i += 1;
                    run_start = i;
                }
                b',' => {
                    cur.push_str(&text[run_start..i]);
                    fields.push(std::mem::take(&mut cur));
                    at_start = true;
                    i += 1;
                    run_start = i;
                }
                b'\n' | b'\r' if b == b'\n' || bytes.get(i + 1) == Some(&b'\n') => {
                    cur.push_str(&text[run_start..i]);
                    fields.push(cur);
                    let end = if b == b'\r' { i + 2 } else { i + 1 };
                    self.pos = end;
                    self.line += 1;
                    return Some(Ok(Record {
                        line: start_line,
                        fields,
                        end,
                        terminated: true,
                    }));
                }
                _ => {
                    at_start = false;
                    i += 1;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let fields = ["plain", "a,b", "say \"hi\"", "", " padded", "x"];
        let line = join(&fields);
        assert_eq!(line, "plain,\"a,b\",\"say \"\"hi\"\"\",,\" padded\",x");
        assert_eq!(parse_line(&line).unwrap(), fields);
    }

    #[test]
    fn control_characters_are_quoted_and_read_back() {
        let fields = [
            "line\nbreak",
            "cr\r\nlf",
            "tab\there",
            "bell\u{7}",
            "q\"uote",
            "ünïcödé",
            "",
        ];
        let line = join(&fields);
        assert_eq!(quote("tab\there"), "\"tab\there\"");
        assert_eq!(quote("bell\u{7}"), "\"bell\u{7}\"");
        let text = format!("{line}\n{line}\r\nlast");
        let recs: Vec<Record> = Records::new(&text, false).map(|r| r.unwrap()).collect();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].fields, fields);
        assert_eq!(recs[1].fields, fields);
        // Two quoted line breaks per record: each spans three lines.
        assert_eq!((recs[0].line, recs[1].line, recs[2].line), (1, 4, 7));
        assert!(recs[1].terminated && !recs[2].terminated);
        assert_eq!(recs[2].fields, ["last"]);
        assert_eq!(recs[1].end, text.len() - 4);
    }

    #[test]
    fn comments_and_blank_lines_are_skipped_between_records() {
        let text = "# c \"open\n\na,\"b\n# not a comment\"\n  \n#x\nc\n";
        let recs: Vec<Record> = Records::new(text, true).map(|r| r.unwrap()).collect();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].fields, ["a", "b\n# not a comment"]);
        assert_eq!((recs[0].line, recs[1].line), (3, 7));
        assert_eq!(recs[1].fields, ["c"]);
    }

    #[test]
    fn malformed_lines() {
        assert!(
            parse_line("\"open,b")
                .unwrap_err()
                .contains("unclosed quote")
        );
        assert!(
            parse_line("\"a\"b,c")
                .unwrap_err()
                .contains("after a closing quote")
        );
        assert_eq!(parse_line("a,").unwrap(), vec!["a", ""]);
        assert_eq!(parse_line("").unwrap(), vec![""]);
        // A torn last record (a crash mid-write) is an error, and reading stops there.
        let mut r = Records::new("a,b\n\"torn,", false);
        assert!(r.next().unwrap().is_ok());
        assert!(r.next().unwrap().is_err());
        assert!(r.next().is_none());
    }
}
