//! The search grammar, parsed by hand with hard caps, so user text never reaches tantivy's
//! `QueryParser` (which has no depth limit: a few thousand parentheses overflow the stack).
//!
//! ```text
//! query  := or
//! or     := and ("OR" and)*
//! and    := unary+
//! unary  := "-" atom | atom
//! atom   := "(" or ")" | '"' words '"' | word        word: #tag, @name or plain text
//! ```
//!
//! Terms next to each other must all match; `OR` between them lets either; `-` excludes. Words
//! are tokenized like the indexed text, so `#rust` matches the tag and `rust` matches the word
//! (and the tag).

use tantivy::query::{AllQuery, BooleanQuery, EmptyQuery, Occur, PhraseQuery, Query, TermQuery};
use tantivy::schema::{Field, IndexRecordOption};
use tantivy::Term;

use super::tokenizer;

/// Longest query, in bytes.
pub const MAX_QUERY_BYTES: usize = 256;
/// Most terms and phrases in one query.
pub const MAX_TERMS: usize = 16;
/// Deepest nesting of parentheses.
pub const MAX_DEPTH: usize = 4;
/// Most words in one phrase.
pub const MAX_PHRASE_WORDS: usize = 8;

/// A parsed query.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Word(String),
    Phrase(Vec<String>),
    /// Each part with whether it is excluded.
    And(Vec<(bool, Expr)>),
    Or(Vec<Expr>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

fn err<T>(s: impl Into<String>) -> Result<T, QueryError> {
    Err(QueryError(s.into()))
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Open,
    Close,
    Not,
    Or,
    Word(String),
    Phrase(String),
}

fn lex(q: &str) -> Result<Vec<Tok>, QueryError> {
    let mut out = Vec::new();
    let mut chars = q.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' => out.push(Tok::Open),
            ')' => out.push(Tok::Close),
            '-' if chars.peek().is_some_and(|&(_, n)| !n.is_whitespace()) => out.push(Tok::Not),
            '"' => {
                let start = i + 1;
                let mut end = None;
                for (j, c) in chars.by_ref() {
                    if c == '"' {
                        end = Some(j);
                        break;
                    }
                }
                let Some(end) = end else {
                    return err("a quoted phrase is not closed: add the closing \"");
                };
                out.push(Tok::Phrase(q[start..end].to_owned()));
            }
            _ => {
                let mut end = i + c.len_utf8();
                while let Some(&(j, n)) = chars.peek() {
                    if n.is_whitespace() || matches!(n, '(' | ')' | '"') {
                        break;
                    }
                    end = j + n.len_utf8();
                    chars.next();
                }
                let word = &q[i..end];
                out.push(if word == "OR" {
                    Tok::Or
                } else {
                    Tok::Word(word.to_owned())
                });
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
    terms: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn or(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut parts = vec![self.and(depth)?];
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            parts.push(self.and(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Expr::Or(parts)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let mut parts = Vec::new();
        while let Some(tok) = self.peek() {
            if matches!(tok, Tok::Close | Tok::Or) {
                break;
            }
            let negated = *tok == Tok::Not;
            if negated {
                self.pos += 1;
            }
            parts.push((negated, self.atom(depth)?));
        }
        match parts.len() {
            0 => err("expected a word where the query has OR, ) or nothing"),
            1 if !parts[0].0 => Ok(parts.remove(0).1),
            _ => Ok(Expr::And(parts)),
        }
    }

    fn atom(&mut self, depth: usize) -> Result<Expr, QueryError> {
        let tok = self.toks.get(self.pos).cloned();
        self.pos += 1;
        let count = |p: &mut Parser| {
            p.terms += 1;
            if p.terms > MAX_TERMS {
                return err(format!("too many terms: at most {MAX_TERMS}"));
            }
            Ok(())
        };
        match tok {
            Some(Tok::Open) => {
                if depth >= MAX_DEPTH {
                    return err(format!("parentheses nest too deep: at most {MAX_DEPTH}"));
                }
                let inner = self.or(depth + 1)?;
                if self.peek() != Some(&Tok::Close) {
                    return err("a ( is not closed: add the closing )");
                }
                self.pos += 1;
                Ok(inner)
            }
            Some(Tok::Word(w)) => {
                count(self)?;
                Ok(Expr::Word(w))
            }
            Some(Tok::Phrase(p)) => {
                count(self)?;
                let words: Vec<String> = primary_tokens(&p);
                if words.len() > MAX_PHRASE_WORDS {
                    return err(format!("a phrase has at most {MAX_PHRASE_WORDS} words"));
                }
                Ok(Expr::Phrase(words))
            }
            Some(Tok::Not) => err("- must stand before a word, a phrase or ("),
            Some(Tok::Close) => err("a ) has no matching ("),
            Some(Tok::Or) => err("OR must stand between two terms"),
            None => err("the query ends where a term was expected"),
        }
    }
}

/// Parses a query; an empty query is `None` (match everything, narrowed by filters).
pub fn parse(q: &str) -> Result<Option<Expr>, QueryError> {
    if q.len() > MAX_QUERY_BYTES {
        return err(format!(
            "the query is {} bytes long: at most {MAX_QUERY_BYTES}",
            q.len()
        ));
    }
    if q.chars().any(|c| c.is_control()) {
        return err("the query holds control characters");
    }
    let toks = lex(q)?;
    if toks.is_empty() {
        return Ok(None);
    }
    let mut p = Parser {
        toks,
        pos: 0,
        terms: 0,
    };
    let expr = p.or(0)?;
    if p.pos < p.toks.len() {
        return err("a ) has no matching (");
    }
    Ok(Some(expr))
}

/// The tokens a query word stands for: the sigil form of `#tag`/`@name`, not its bare copy.
fn primary_tokens(text: &str) -> Vec<String> {
    tokenizer::tokens(text)
        .into_iter()
        .filter(|t| !t.3)
        .map(|t| t.2)
        .collect()
}

/// Builds the tantivy query over the text field.
pub fn to_query(expr: &Expr, text: Field) -> Box<dyn Query> {
    let phrase = |words: &[String]| -> Box<dyn Query> {
        match words {
            [] => Box::new(EmptyQuery),
            [one] => Box::new(TermQuery::new(
                Term::from_field_text(text, one),
                IndexRecordOption::WithFreqs,
            )),
            many => Box::new(PhraseQuery::new(
                many.iter()
                    .map(|w| Term::from_field_text(text, w))
                    .collect(),
            )),
        }
    };
    match expr {
        Expr::Word(w) => phrase(&primary_tokens(w)),
        Expr::Phrase(words) => phrase(words),
        Expr::Or(parts) => Box::new(BooleanQuery::new(
            parts
                .iter()
                .map(|p| (Occur::Should, to_query(p, text)))
                .collect(),
        )),
        Expr::And(parts) => {
            let mut clauses: Vec<(Occur, Box<dyn Query>)> = parts
                .iter()
                .map(|(neg, p)| {
                    (
                        if *neg { Occur::MustNot } else { Occur::Must },
                        to_query(p, text),
                    )
                })
                .collect();
            if parts.iter().all(|(neg, _)| *neg) {
                clauses.push((Occur::Must, Box::new(AllQuery)));
            }
            Box::new(BooleanQuery::new(clauses))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_grammar() {
        assert_eq!(parse("  ").unwrap(), None);
        assert_eq!(parse("#rust").unwrap(), Some(Expr::Word("#rust".into())));
        assert_eq!(
            parse("a OR (b -c)").unwrap(),
            Some(Expr::Or(vec![
                Expr::Word("a".into()),
                Expr::And(vec![
                    (false, Expr::Word("b".into())),
                    (true, Expr::Word("c".into()))
                ])
            ]))
        );
        assert_eq!(
            parse("\"Hello World\"").unwrap(),
            Some(Expr::Phrase(vec!["hello".into(), "world".into()]))
        );
    }

    #[test]
    fn refuses_hostile_queries() {
        for q in [
            "(".repeat(3000),
            "((((((a))))))".to_owned(),
            "a ".repeat(17),
            "x".repeat(300),
            "\"open".to_owned(),
            "a)".to_owned(),
            "OR".to_owned(),
            "a OR".to_owned(),
            "-".to_owned() + "(",
            "a\u{0}b".to_owned(),
        ] {
            assert!(parse(&q).is_err(), "{q:?}");
        }
    }
}
