//! Status text: finding `#tags` and `@mentions` in what a person wrote, and the character rules
//! for free text and names, in one hand-written scanner that treats every script alike.

use std::collections::HashMap;
use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

use super::error::{code_point, ModelError};
use super::key::ArchiveKey;
use super::limits::{MAX_MENTIONS, MAX_MENTION_SPANS, MAX_NAME_CHARS, MAX_TAGS, MAX_TAG_CHARS};
use super::status::Mention;
use super::url::ArchiveUrl;

/// One `@name` in a text: the name without the `@`, and the byte range of `@name` in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MentionSpan {
    /// The name as written, such as `alice` for `@alice`.
    pub name: String,
    /// Where `@name` stands in the text, in bytes, `@` included.
    pub range: Range<usize>,
}

/// The `#tags` of a text, lowercased, without duplicates, in order of first appearance, at most
/// [`MAX_TAGS`].
///
/// A tag is `#` followed by letters, digits, combining marks and `_`, so `#café`, `#日本語` and
/// `#straße` are tags. The `#` must stand at the start, after whitespace or after punctuation
/// that does not join words (so `a#b`, `https://x/#frag` and `&#38;` hold no tag), and not inside
/// a token holding `://`. A tag needs at least one letter (`#123` is not a tag); a tag longer
/// than [`MAX_TAG_CHARS`] is dropped rather than cut, since a cut tag would be another tag.
/// Characters are lowercased with `str::to_lowercase` but not otherwise normalized.
pub fn extract_tags(text: &str) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    scan(text, Sigil::Tag, |_, name| {
        if let Some(tag) = normalize_tag(name) {
            if !tags.contains(&tag) {
                tags.push(tag);
            }
        }
        tags.len() < MAX_TAGS
    });
    tags
}

/// Every `#word` of a text that could be a tag, for a writer who must refuse rather than let
/// [`extract_tags`] drop some: the tags it finds (by the same rules, without the count limit)
/// and the `#words` left out because they are longer than [`MAX_TAG_CHARS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TagScan {
    /// The distinct tags, lowercased, in order of first appearance; may exceed [`MAX_TAGS`].
    pub tags: Vec<String>,
    /// The `#words` (as written, without `#`) too long to be tags, each once.
    pub too_long: Vec<String>,
}

/// Scans the whole text for tags; see [`TagScan`]. Linear in the text, like [`extract_tags`].
pub fn scan_tags(text: &str) -> TagScan {
    let mut out = TagScan::default();
    let mut seen = std::collections::HashSet::new();
    scan(text, Sigil::Tag, |_, name| {
        match normalize_tag(name) {
            Some(tag) if seen.insert(tag.clone()) => out.tags.push(tag),
            Some(_) => {}
            // Refused for its length, not for lacking a letter (`#123` is no tag at all).
            None if name.chars().any(char::is_alphabetic)
                && !out.too_long.iter().any(|t| t == name) =>
            {
                out.too_long.push(name.to_owned())
            }
            None => {}
        }
        true
    });
    out
}

/// Every `@name` in a text, in order, at most [`MAX_MENTION_SPANS`].
///
/// Names follow the rules of tags (see [`extract_tags`]), may also hold `-` and `.`, never end with
/// `.` (so `@bob.` is `bob`), need a letter or digit, and are at most [`MAX_NAME_CHARS`] long; an
/// address like `bob@example.com` holds no mention. Names come back as written, not lowercased.
pub fn extract_mentions(text: &str) -> Vec<MentionSpan> {
    let mut spans = Vec::new();
    scan(text, Sigil::Mention, |range, name| {
        if name.chars().any(char::is_alphanumeric) && name.chars().nth(MAX_NAME_CHARS).is_none() {
            spans.push(MentionSpan {
                name: name.to_owned(),
                range,
            });
        }
        spans.len() < MAX_MENTION_SPANS
    });
    spans
}

/// The mentions of a text resolved against the archives the writer knows, for
/// [`Status::mentions`](super::Status::mentions).
///
/// `candidates` pairs each known profile name with its archive (usually the writer's follows).
/// An `@name` resolves to the candidate whose name is exactly `name`, else to the candidate whose
/// name, with whitespace removed, equals `name` ignoring case (`@alicesmith` finds "Alice Smith").
/// A name that fits candidates of several archives is ambiguous and left out, as is a name that
/// fits none. The result names each archive once (by its root URL, with the name as written), in
/// order of first mention, at most [`MAX_MENTIONS`].
pub fn resolve_mentions<S: AsRef<str>>(text: &str, candidates: &[(S, ArchiveUrl)]) -> Vec<Mention> {
    // `None` marks a name shared by several archives.
    let mut exact: HashMap<&str, Option<ArchiveKey>> = HashMap::new();
    let mut loose: HashMap<String, Option<ArchiveKey>> = HashMap::new();
    for (name, url) in candidates {
        let key = url.key();
        let merge = |slot: &mut Option<ArchiveKey>| {
            if *slot != Some(key) {
                *slot = None;
            }
        };
        exact
            .entry(name.as_ref())
            .and_modify(merge)
            .or_insert(Some(key));
        let folded = loose_name(name.as_ref());
        if !folded.is_empty() {
            loose.entry(folded).and_modify(merge).or_insert(Some(key));
        }
    }
    let mut mentions: Vec<Mention> = Vec::new();
    for span in extract_mentions(text) {
        let key = match exact.get(span.name.as_str()) {
            Some(found) => *found,
            None => loose.get(&loose_name(&span.name)).copied().flatten(),
        };
        let Some(key) = key else { continue };
        if mentions.iter().any(|mention| mention.url.key() == key) {
            continue;
        }
        mentions.push(Mention {
            url: ArchiveUrl::root(key),
            name: span.name,
        });
        if mentions.len() == MAX_MENTIONS {
            break;
        }
    }
    mentions
}

/// A name as `@mentions` may abbreviate it: whitespace removed, lowercased.
fn loose_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Whether a character may hide or rewrite what surrounds it: control characters, the Unicode
/// line and paragraph separators and the bidi controls. Paths and names refuse them all.
pub(crate) fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}'
                | '\u{2029}'
                | '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
        )
}

/// Checks free text (a status, a bio): control characters other than newline and tab are refused.
/// Bidi controls are allowed, as right-to-left writers need them; the app isolates such text when
/// it shows it (`<bdi>`, `dir="auto"`).
pub(crate) fn check_free_text(what: &str, text: &str) -> Result<(), ModelError> {
    match text
        .chars()
        .find(|&c| c.is_control() && c != '\n' && c != '\t')
    {
        Some(c) => Err(refuse_char(
            what,
            c,
            "control characters other than newline and tab are not allowed",
        )),
        None => Ok(()),
    }
}

/// Checks a name (a profile name, a mention name): control, line separator and bidi characters
/// are refused, since a name is shown inline where they could disguise it.
pub(crate) fn check_name(what: &str, name: &str) -> Result<(), ModelError> {
    match name.chars().find(|&c| is_unsafe_char(c)) {
        Some(c) => Err(refuse_char(
            what,
            c,
            "control, line separator and bidi characters are not allowed",
        )),
        None => Ok(()),
    }
}

/// Checks that a text is not empty or whitespace only.
pub(crate) fn check_not_blank(what: &str, text: &str) -> Result<(), ModelError> {
    if text.trim().is_empty() {
        return Err(ModelError::Empty {
            what: what.to_owned(),
        });
    }
    Ok(())
}

/// Checks a length in Unicode scalar values.
pub(crate) fn check_chars(what: &str, text: &str, limit: usize) -> Result<(), ModelError> {
    // A string has at least as many bytes as characters, so most texts need no counting.
    if text.len() <= limit {
        return Ok(());
    }
    let len = text.chars().count();
    if len > limit {
        return Err(ModelError::TooLong {
            what: what.to_owned(),
            len,
            unit: "characters",
            limit,
        });
    }
    Ok(())
}

fn refuse_char(what: &str, c: char, reason: &str) -> ModelError {
    ModelError::Invalid {
        what: what.to_owned(),
        value: format!("text containing {}", code_point(c)),
        reason: reason.to_owned(),
    }
}

/// The normalized form of a tag written without `#` (as in a status's `tags` list), or `None` if
/// it is not one tag by the rules of [`extract_tags`].
pub(crate) fn normalize_tag(name: &str) -> Option<String> {
    if name.is_empty() || name_run(name, Sigil::Tag).0 != name.len() {
        return None;
    }
    // Lowercasing never shortens a string in characters, so a long name can be refused first.
    if name.chars().nth(MAX_TAG_CHARS).is_some() {
        return None;
    }
    let tag = name.to_lowercase();
    (tag.chars().any(char::is_alphabetic) && tag.chars().nth(MAX_TAG_CHARS).is_none())
        .then_some(tag)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Sigil {
    Tag,
    Mention,
}

impl Sigil {
    fn as_str(self) -> &'static str {
        match self {
            Sigil::Tag => "#",
            Sigil::Mention => "@",
        }
    }

    /// Whether a grapheme starting with `base` continues a name.
    fn continues(self, base: char) -> bool {
        base.is_alphanumeric()
            || base == '_'
            || (self == Sigil::Mention && matches!(base, '-' | '.'))
    }
}

/// Characters that join the word before them to a following `#` or `@`, as in `https://x/#frag`,
/// `me@host`, `&#38;`, `a_#b` or `x=#y`.
const JOINERS: &[char] = &[
    '/', '#', '@', '&', '_', '-', '.', '=', '+', '\\', '~', '%', '`',
];

/// Whether a sigil after a grapheme starting with `prev` may start a name.
fn starts_name(prev: Option<char>) -> bool {
    match prev {
        None => true,
        Some(c) => c.is_whitespace() || !(c.is_alphanumeric() || JOINERS.contains(&c)),
    }
}

/// The byte length of the leading run of name graphemes in `s`, and the first character of the
/// last one. Whole graphemes are taken, so combining marks stay with their letter.
fn name_run(s: &str, sigil: Sigil) -> (usize, Option<char>) {
    let mut end = 0;
    let mut last = None;
    for (start, grapheme) in s.grapheme_indices(true) {
        let Some(base) = grapheme.chars().next() else {
            break;
        };
        if !sigil.continues(base) || grapheme.chars().any(is_unsafe_char) {
            break;
        }
        end = start + grapheme.len();
        last = Some(base);
    }
    (end, last)
}

/// Calls `found` with the range of each `#name` or `@name` (sigil included) and the name, in
/// order, until it returns false. Runs in time linear in the text: each grapheme is looked at
/// at most twice.
fn scan(text: &str, sigil: Sigil, mut found: impl FnMut(Range<usize>, &str) -> bool) {
    let mut graphemes = text.grapheme_indices(true).peekable();
    // The first character of the previous grapheme: a base letter, not one of its marks.
    let mut prev: Option<char> = None;
    // Whether the current whitespace-separated token holds `://`, making it a URL.
    let mut in_url = false;
    while let Some((start, grapheme)) = graphemes.next() {
        let Some(base) = grapheme.chars().next() else {
            continue;
        };
        if base.is_whitespace() {
            in_url = false;
        } else if grapheme == ":" && text[start..].starts_with("://") {
            in_url = true;
        } else if grapheme == sigil.as_str() && !in_url && starts_name(prev) {
            let name_start = start + grapheme.len();
            let (len, last) = name_run(&text[name_start..], sigil);
            let consumed = name_start + len;
            while graphemes.peek().is_some_and(|&(next, _)| next < consumed) {
                graphemes.next();
            }
            prev = last.or(Some(base));
            let mut name = &text[name_start..consumed];
            if sigil == Sigil::Mention {
                name = name.trim_end_matches('.');
            }
            if !name.is_empty() && !found(start..name_start + name.len(), name) {
                return;
            }
            continue;
        }
        prev = Some(base);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::model::key::tests::key;

    fn check_tags(text: &str, expected: &[&str]) {
        assert_eq!(extract_tags(text), expected, "tags of {text:?}");
    }

    #[test]
    fn scan_tags_finds_what_extract_tags_drops() {
        let words: String = (0..25).map(|i| format!("#t{i} ")).collect();
        let long = "a".repeat(MAX_TAG_CHARS + 1);
        let text = format!("{words}#{long} #{long} #123 #T0");
        let scan = scan_tags(&text);
        assert_eq!(scan.tags.len(), 25);
        assert_eq!(scan.tags[..MAX_TAGS], extract_tags(&text)[..]);
        assert_eq!(scan.too_long, [long]);
        assert_eq!(
            scan_tags("#fine #Fine"),
            TagScan {
                tags: vec!["fine".into()],
                too_long: vec![]
            }
        );
    }

    fn check_mentions(text: &str, expected: &[&str]) {
        let spans = extract_mentions(text);
        let names: Vec<&str> = spans.iter().map(|span| span.name.as_str()).collect();
        assert_eq!(names, expected, "mentions of {text:?}");
        for span in &spans {
            assert_eq!(&text[span.range.clone()], format!("@{}", span.name));
        }
    }

    #[test]
    fn tags_in_plain_text() {
        check_tags("#rust is fun", &["rust"]);
        check_tags("I like #rust and #p2p.", &["rust", "p2p"]);
        check_tags(
            "(#tag) [#two] \"#three\" #four, #five; #six! ¿#siete?",
            &["tag", "two", "three", "four", "five", "six", "siete"],
        );
        check_tags("#tag's #foo_bar #1a #a1", &["tag", "foo_bar", "1a", "a1"]);
        check_tags("line\n#next\t#tab", &["next", "tab"]);
        check_tags("", &[]);
        check_tags("#", &[]);
        check_tags("# tag", &[]);
    }

    #[test]
    fn tags_in_any_script() {
        check_tags(
            "#café #日本語 #straße #Ελληνικά #русский",
            &["café", "日本語", "straße", "ελληνικά", "русский"],
        );
        // A decomposed é keeps its combining accent.
        check_tags("#cafe\u{301} ok", &["cafe\u{301}"]);
        check_tags("#हिन्दी", &["हिन्दी"]);
        check_tags("。#タグ、", &["タグ"]);
        check_tags("#İstanbul", &["i\u{307}stanbul"]);
    }

    #[test]
    fn tags_are_lowercased_and_deduplicated() {
        check_tags("#Rust #rust #RUST #Café #CAFÉ", &["rust", "café"]);
    }

    #[test]
    fn not_tags() {
        check_tags("a#b", &[]);
        check_tags("日本語#タグ", &[]);
        check_tags("https://x/#frag", &[]);
        check_tags("https://example.com/page#frag", &[]);
        check_tags("see https://x.com/a,#b?c and #real", &["real"]);
        check_tags("example.com/#frag", &[]);
        check_tags("&#38; x=#y a_#b", &[]);
        check_tags("#123 #١٢٣ #_ #__1", &[]);
        check_tags("#\u{1F600} #️⃣", &[]);
        check_tags("##double", &[]);
    }

    #[test]
    fn tags_stop_at_unsafe_characters() {
        check_tags("#ab\u{202e}cd", &["ab"]);
        check_tags("#ab\u{0}cd", &["ab"]);
    }

    #[test]
    fn tag_limits() {
        let many: String = (0..25).map(|i| format!("#t{i} ")).collect();
        let tags = extract_tags(&many);
        assert_eq!(tags.len(), MAX_TAGS);
        assert_eq!(tags[19], "t19");
        let longest = "a".repeat(MAX_TAG_CHARS);
        check_tags(&format!("#{longest}"), &[&longest]);
        check_tags(&format!("#{}a #short", longest), &["short"]);
    }

    #[test]
    fn tags_of_a_megabyte_in_linear_time() {
        let started = Instant::now();
        check_tags(&"#a ".repeat(350_000), &["a"]);
        let words: String = (0..100_000).map(|i| format!("#w{i} ")).collect();
        assert_eq!(extract_tags(&words).len(), MAX_TAGS);
        let one_word = format!("#{}", "a".repeat(1_000_000));
        check_tags(&one_word, &[]);
        check_tags(&"#".repeat(1_000_000), &[]);
        assert!(
            started.elapsed().as_secs() < 20,
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn mentions() {
        check_mentions("hi @alice!", &["alice"]);
        check_mentions("@bob. @bob.smith. @a-b_c", &["bob", "bob.smith", "a-b_c"]);
        check_mentions("@Zoë and @日本", &["Zoë", "日本"]);
        check_mentions("@a @a", &["a", "a"]);
        check_mentions("(@paren)", &["paren"]);
    }

    #[test]
    fn not_mentions() {
        check_mentions("mail bob@example.com", &[]);
        check_mentions("@@bob", &[]);
        check_mentions("@- @. @-.- @", &[]);
        check_mentions("https://x/@bob", &[]);
        check_mentions("https://mastodon.example/@bob", &[]);
        check_mentions(&format!("@{}", "a".repeat(MAX_NAME_CHARS + 1)), &[]);
    }

    #[test]
    fn mention_spans_are_capped() {
        let text = "@a ".repeat(10_000);
        assert_eq!(extract_mentions(&text).len(), MAX_MENTION_SPANS);
    }

    #[test]
    fn resolves_mentions_against_candidates() {
        let alice = ArchiveUrl::root(key(1));
        let bob = ArchiveUrl::root(key(2));
        let other_bob = ArchiveUrl::root(key(3));
        let candidates = vec![
            ("Alice Smith".to_owned(), alice.clone()),
            ("bob".to_owned(), bob.clone()),
            ("Bob".to_owned(), other_bob.clone()),
        ];
        let mentions =
            resolve_mentions("@alicesmith @AliceSmith @bob @Bob @BOB @carol", &candidates);
        assert_eq!(
            mentions,
            vec![
                Mention {
                    url: alice,
                    name: "alicesmith".into()
                },
                Mention {
                    url: bob,
                    name: "bob".into()
                },
                Mention {
                    url: other_bob,
                    name: "Bob".into()
                },
            ]
        );
    }

    #[test]
    fn resolve_uses_archive_roots_and_caps() {
        let file = ArchiveUrl::new(key(4), "/profile.json".parse().unwrap());
        let mentions = resolve_mentions("@dora", &[("Dora", file)]);
        assert_eq!(
            mentions,
            vec![Mention {
                url: ArchiveUrl::root(key(4)),
                name: "dora".into()
            }]
        );

        let candidates: Vec<(String, ArchiveUrl)> = (0..60u8)
            .map(|i| (format!("u{i}"), ArchiveUrl::root(key(i))))
            .collect();
        let text: String = (0..60).map(|i| format!("@u{i} ")).collect();
        assert_eq!(resolve_mentions(&text, &candidates).len(), MAX_MENTIONS);
        let text = "@u1 ".repeat(10_000);
        assert_eq!(resolve_mentions(&text, &candidates).len(), 1);
    }

    #[test]
    fn normalizes_single_tags() {
        assert_eq!(normalize_tag("Rust"), Some("rust".to_owned()));
        assert_eq!(normalize_tag("日本語"), Some("日本語".to_owned()));
        assert_eq!(normalize_tag(""), None);
        assert_eq!(normalize_tag("two words"), None);
        assert_eq!(normalize_tag("#rust"), None);
        assert_eq!(normalize_tag("123"), None);
        assert_eq!(normalize_tag(&"a".repeat(65)), None);
    }

    #[test]
    fn character_rules() {
        assert!(check_free_text("bio", "two\nlines\tand \u{202e}rtl").is_ok());
        let err = check_free_text("bio", "bell\u{7}").unwrap_err().to_string();
        assert_eq!(err, "bio text containing U+0007 is invalid: control characters other than newline and tab are not allowed");
        assert!(check_name("name", "Zoë Ñandú 日本").is_ok());
        assert!(check_name("name", "admin\u{202e}").is_err());
        assert!(check_name("name", "two\nlines").is_err());
        assert!(check_not_blank("name", " \t").is_err());
        assert!(check_chars("x", "ééé", 3).is_ok());
        assert_eq!(
            check_chars("status text", &"a".repeat(5123), 1000)
                .unwrap_err()
                .to_string(),
            "status text is 5123 characters; the limit is 1000"
        );
    }
}
