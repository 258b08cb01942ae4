//! Tokens of NMODL as nocmodl reads them: `:` and `?` start comments, `COMMENT … ENDCOMMENT` and
//! `TITLE …` are skipped, `VERBATIM … ENDVERBATIM` is kept as raw text, `UNITSON`/`UNITSOFF` are
//! dropped, `name'` is a derivative. Keywords stay identifiers; the parser decides by context.

use crate::error::{Pos, Result, Source};

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Ident(String),
    /// `name'`, `name''`: a state and the order of its derivative.
    Prime(String, u32),
    /// A number and whether it was written as an integer.
    Number(f64, bool),
    Str(String),
    Verbatim(String),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Assign,
    EqEq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
    Not,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Caret,
    Tilde,
    /// `<->`
    React,
    /// `<<`
    LtLt,
    /// Any other character (only legal inside a units string).
    Other(char),
    Eof,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    pub pos: Pos,
    /// Byte range in the source (used to recover units text verbatim).
    pub start: usize,
    pub end: usize,
}

pub fn describe(t: &Tok) -> String {
    match t {
        Tok::Ident(s) => format!("'{s}'"),
        Tok::Prime(s, n) => format!("'{s}{}'", "'".repeat(*n as usize)),
        Tok::Number(x, _) => format!("number {x}"),
        Tok::Str(_) => "a string".into(),
        Tok::Verbatim(_) => "VERBATIM block".into(),
        Tok::Eof => "end of file".into(),
        Tok::Other(c) => format!("'{c}'"),
        other => format!("'{}'", symbol(other)),
    }
}

fn symbol(t: &Tok) -> &'static str {
    match t {
        Tok::LParen => "(",
        Tok::RParen => ")",
        Tok::LBrace => "{",
        Tok::RBrace => "}",
        Tok::LBracket => "[",
        Tok::RBracket => "]",
        Tok::Comma => ",",
        Tok::Assign => "=",
        Tok::EqEq => "==",
        Tok::Ne => "!=",
        Tok::Lt => "<",
        Tok::Le => "<=",
        Tok::Gt => ">",
        Tok::Ge => ">=",
        Tok::And => "&&",
        Tok::Or => "||",
        Tok::Not => "!",
        Tok::Plus => "+",
        Tok::Minus => "-",
        Tok::Star => "*",
        Tok::Slash => "/",
        Tok::Percent => "%",
        Tok::Caret => "^",
        Tok::Tilde => "~",
        Tok::React => "<->",
        Tok::LtLt => "<<",
        _ => "?",
    }
}

struct Lexer<'a> {
    src: &'a str,
    bytes: &'a [u8],
    i: usize,
    line: u32,
    col: u32,
    source: &'a Source,
}

impl<'a> Lexer<'a> {
    fn pos(&self) -> Pos {
        Pos { line: self.line, col: self.col }
    }

    fn peek(&self, k: usize) -> u8 {
        *self.bytes.get(self.i + k).unwrap_or(&0)
    }

    fn bump(&mut self) -> u8 {
        let c = self.bytes[self.i];
        self.i += 1;
        if c == b'\n' {
            self.line += 1;
            self.col = 1;
        } else if c & 0xC0 != 0x80 {
            // Count characters, not UTF-8 continuation bytes.
            self.col += 1;
        }
        c
    }

    fn skip_line(&mut self) {
        while self.i < self.bytes.len() && self.peek(0) != b'\n' {
            self.bump();
        }
    }

    /// Skip (or capture) raw text up to the keyword `end`, which must appear as a whole word.
    fn raw_until(&mut self, start_pos: Pos, what: &str, end: &str) -> Result<String> {
        let from = self.i;
        loop {
            if self.i >= self.bytes.len() {
                return Err(self.source.syntax(start_pos, format!("{what} without {end}")));
            }
            if self.bytes[self.i..].starts_with(end.as_bytes()) {
                let before_ok = self.i == 0 || !is_ident_byte(self.bytes[self.i - 1]);
                let after = self.bytes.get(self.i + end.len()).copied().unwrap_or(b' ');
                if before_ok && !is_ident_byte(after) {
                    let text = self.src[from..self.i].to_string();
                    for _ in 0..end.len() {
                        self.bump();
                    }
                    return Ok(text);
                }
            }
            self.bump();
        }
    }

    fn number(&mut self) -> Result<Tok> {
        let start = self.i;
        let pos = self.pos();
        let mut integer = true;
        while self.peek(0).is_ascii_digit() {
            self.bump();
        }
        if self.peek(0) == b'.' {
            integer = false;
            self.bump();
            while self.peek(0).is_ascii_digit() {
                self.bump();
            }
        }
        if matches!(self.peek(0), b'e' | b'E') {
            let k = if matches!(self.peek(1), b'+' | b'-') { 2 } else { 1 };
            if self.peek(k).is_ascii_digit() {
                integer = false;
                for _ in 0..k {
                    self.bump();
                }
                while self.peek(0).is_ascii_digit() {
                    self.bump();
                }
            }
        }
        let text = &self.src[start..self.i];
        let value: f64 = text.parse().map_err(|_| self.source.syntax(pos, format!("malformed number '{text}'")))?;
        Ok(Tok::Number(value, integer))
    }
}

fn is_ident_byte(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Split a whole file into tokens (ending with `Eof`).
pub fn tokenize(src: &str, source: &Source) -> Result<Vec<Token>> {
    let mut lx = Lexer { src, bytes: src.as_bytes(), i: 0, line: 1, col: 1, source };
    let mut out = Vec::new();
    loop {
        // Whitespace and comments.
        loop {
            match lx.peek(0) {
                b' ' | b'\t' | b'\r' | b'\n' | 0x0c => {
                    lx.bump();
                }
                b':' | b'?' => lx.skip_line(),
                _ => break,
            }
            if lx.i >= lx.bytes.len() {
                break;
            }
        }
        let pos = lx.pos();
        let start = lx.i;
        if lx.i >= lx.bytes.len() {
            out.push(Token { tok: Tok::Eof, pos, start, end: start });
            return Ok(out);
        }
        let c = lx.peek(0);
        let tok = if c.is_ascii_alphabetic() || c == b'_' {
            while is_ident_byte(lx.peek(0)) {
                lx.bump();
            }
            let word = &src[start..lx.i];
            match word {
                "COMMENT" => {
                    lx.raw_until(pos, "COMMENT", "ENDCOMMENT")?;
                    continue;
                }
                "TITLE" => {
                    lx.skip_line();
                    continue;
                }
                "UNITSON" | "UNITSOFF" => continue,
                "VERBATIM" => Tok::Verbatim(lx.raw_until(pos, "VERBATIM", "ENDVERBATIM")?),
                "ENDCOMMENT" | "ENDVERBATIM" => {
                    return Err(source.syntax(pos, format!("{word} without a matching opening keyword")))
                }
                "REPRESENTS" => {
                    // Ontology annotation: the rest of the line is an identifier we do not need.
                    lx.skip_line();
                    continue;
                }
                _ => {
                    let mut primes = 0;
                    while lx.peek(0) == b'\'' {
                        lx.bump();
                        primes += 1;
                    }
                    let name = match word {
                        "IF" => "if",
                        "ELSE" => "else",
                        "WHILE" => "while",
                        w => w,
                    };
                    if primes > 0 {
                        Tok::Prime(name.to_string(), primes)
                    } else {
                        Tok::Ident(name.to_string())
                    }
                }
            }
        } else if c.is_ascii_digit() || (c == b'.' && lx.peek(1).is_ascii_digit()) {
            lx.number()?
        } else if c == b'"' {
            lx.bump();
            let from = lx.i;
            while lx.i < lx.bytes.len() && lx.peek(0) != b'"' {
                lx.bump();
            }
            if lx.i >= lx.bytes.len() {
                return Err(source.syntax(pos, "string without closing '\"'"));
            }
            let s = src[from..lx.i].to_string();
            lx.bump();
            Tok::Str(s)
        } else {
            let two = (c, lx.peek(1));
            let (tok, n) = match two {
                (b'<', b'-') if lx.peek(2) == b'>' => (Tok::React, 3),
                (b'<', b'<') => (Tok::LtLt, 2),
                (b'<', b'=') => (Tok::Le, 2),
                (b'>', b'=') => (Tok::Ge, 2),
                (b'=', b'=') => (Tok::EqEq, 2),
                (b'!', b'=') => (Tok::Ne, 2),
                (b'&', b'&') => (Tok::And, 2),
                (b'|', b'|') => (Tok::Or, 2),
                (b'<', _) => (Tok::Lt, 1),
                (b'>', _) => (Tok::Gt, 1),
                (b'=', _) => (Tok::Assign, 1),
                (b'!', _) => (Tok::Not, 1),
                (b'(', _) => (Tok::LParen, 1),
                (b')', _) => (Tok::RParen, 1),
                (b'{', _) => (Tok::LBrace, 1),
                (b'}', _) => (Tok::RBrace, 1),
                (b'[', _) => (Tok::LBracket, 1),
                (b']', _) => (Tok::RBracket, 1),
                (b',', _) => (Tok::Comma, 1),
                (b'+', _) => (Tok::Plus, 1),
                (b'-', _) => (Tok::Minus, 1),
                (b'*', _) => (Tok::Star, 1),
                (b'/', _) => (Tok::Slash, 1),
                (b'%', _) => (Tok::Percent, 1),
                (b'^', _) => (Tok::Caret, 1),
                (b'~', _) => (Tok::Tilde, 1),
                _ => {
                    let ch = src[lx.i..].chars().next().unwrap_or('?');
                    (Tok::Other(ch), ch.len_utf8())
                }
            };
            for _ in 0..n {
                lx.bump();
            }
            tok
        };
        out.push(Token { tok, pos, start, end: lx.i });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s, &Source::new("t.mod")).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn numbers_names_primes_comments() {
        let t = toks("a = 1.e-3 : comment\n? other\nm' = .5 + 50e-6(mM) x1 1e4");
        assert_eq!(
            t,
            vec![
                Tok::Ident("a".into()),
                Tok::Assign,
                Tok::Number(1e-3, false),
                Tok::Prime("m".into(), 1),
                Tok::Assign,
                Tok::Number(0.5, false),
                Tok::Plus,
                Tok::Number(50e-6, false),
                Tok::LParen,
                Tok::Ident("mM".into()),
                Tok::RParen,
                Tok::Ident("x1".into()),
                Tok::Number(1e4, false),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn blocks_of_raw_text() {
        let t = toks(
            "TITLE hello world\nCOMMENT x = ( ENDCOMMENT VERBATIM\n#include <a.h>\nENDVERBATIM UNITSOFF <-> << <=",
        );
        assert_eq!(t, vec![Tok::Verbatim("\n#include <a.h>\n".into()), Tok::React, Tok::LtLt, Tok::Le, Tok::Eof]);
    }

    #[test]
    fn positions_and_errors() {
        let t = tokenize("a\n  bb", &Source::new("f.mod")).unwrap();
        assert_eq!(t[1].pos, Pos { line: 2, col: 3 });
        let e = tokenize("x\nCOMMENT never closed", &Source::new("f.mod")).unwrap_err();
        assert_eq!(e.to_string(), "syntax error: f.mod:2:1: COMMENT without ENDCOMMENT");
    }
}
