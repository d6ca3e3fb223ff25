//! The text tokenizer: lowercased words, where `#tag` and `@name` stay whole tokens (so a search
//! for `#rust` finds the tag, not every "rust"), and each of them is also indexed bare at the
//! same position (so a search for `rust` still finds `#rust`).

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// The name the tokenizer is registered under in the index.
pub const NAME: &str = "fritter";

/// Longest token kept, in bytes; longer runs are dropped (they are never useful search terms and
/// tantivy refuses terms over 65,530 bytes).
const MAX_TOKEN_BYTES: usize = 128;

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Splits `text` into `(byte range, token text)` pairs in position order; `#tag` and `@name` yield
/// two tokens at one position (the sigil form first).
pub fn tokens(text: &str) -> Vec<(usize, usize, String, bool)> {
    // (from, to, text, same position as the previous token)
    let mut out = Vec::new();
    let mut iter = text.char_indices().peekable();
    while let Some((start, c)) = iter.next() {
        let sigil = (c == '#' || c == '@')
            && iter.peek().is_some_and(|&(_, next)| is_word_char(next))
            && !text[..start].chars().next_back().is_some_and(is_word_char);
        if !sigil && !is_word_char(c) {
            continue;
        }
        let word_start = if sigil { start + c.len_utf8() } else { start };
        let mut end = if sigil {
            word_start
        } else {
            start + c.len_utf8()
        };
        while let Some(&(i, next)) = iter.peek() {
            if !is_word_char(next) {
                break;
            }
            end = i + next.len_utf8();
            iter.next();
        }
        if end - start > MAX_TOKEN_BYTES {
            continue;
        }
        let word = text[word_start..end].to_lowercase();
        if sigil {
            out.push((start, end, format!("{c}{word}"), false));
            out.push((word_start, end, word, true));
        } else {
            out.push((start, end, word, false));
        }
    }
    out
}

/// The tantivy side of [`tokens`].
#[derive(Clone, Default)]
pub struct FritterTokenizer {
    token: Token,
}

impl std::fmt::Debug for FritterTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FritterTokenizer").finish_non_exhaustive()
    }
}

pub struct FritterTokenStream<'a> {
    tokens: std::vec::IntoIter<(usize, usize, String, bool)>,
    token: &'a mut Token,
    position: usize,
    started: bool,
}

impl<'a> std::fmt::Debug for FritterTokenStream<'a> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FritterTokenStream")
            .field("position", &self.position)
            .finish_non_exhaustive()
    }
}

impl Tokenizer for FritterTokenizer {
    type TokenStream<'a> = FritterTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> FritterTokenStream<'a> {
        self.token.reset();
        FritterTokenStream {
            tokens: tokens(text).into_iter(),
            token: &mut self.token,
            position: 0,
            started: false,
        }
    }
}

impl TokenStream for FritterTokenStream<'_> {
    fn advance(&mut self) -> bool {
        let Some((from, to, text, same)) = self.tokens.next() else {
            return false;
        };
        if self.started && !same {
            self.position += 1;
        }
        self.started = true;
        self.token.offset_from = from;
        self.token.offset_to = to;
        self.token.position = self.position;
        self.token.position_length = 1;
        self.token.text = text;
        true
    }

    fn token(&self) -> &Token {
        self.token
    }

    fn token_mut(&mut self) -> &mut Token {
        self.token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(s: &str) -> Vec<String> {
        tokens(s).into_iter().map(|t| t.2).collect()
    }

    #[test]
    fn keeps_tags_and_mentions() {
        assert_eq!(
            texts("Hello #Rust, @Bob! a#b e-mail café"),
            ["hello", "#rust", "rust", "@bob", "bob", "a", "b", "e", "mail", "café"]
        );
        assert_eq!(texts("## @ #"), Vec::<String>::new());
        assert_eq!(texts(&"x".repeat(500)), Vec::<String>::new());
    }
}
