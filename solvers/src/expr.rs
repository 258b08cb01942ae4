//! Small arithmetic expressions for parameters that vary over a cell, e.g. a density that grows with path
//! distance: `6e-4 * (1 + 1.5 * min(distance, 500) / 100)`. Numbers, named variables, `+ - * / ^`,
//! comparisons (`< <= > >= == !=`, giving 1 or 0), parentheses and the functions `min max exp log sqrt abs
//! if(cond, a, b)`. Parsed once, evaluated per segment.

use std::fmt;

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Num(f64),
    Var(usize),
    Neg(Box<Node>),
    Bin(char, Box<Node>, Box<Node>),
    Cmp(&'static str, Box<Node>, Box<Node>),
    Call(&'static str, Vec<Node>),
}

/// A parsed expression over a fixed list of variable names.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    root: Node,
}

/// A parse error with the character position.
#[derive(Debug, Clone, PartialEq)]
pub struct ExprError {
    pub position: usize,
    pub message: String,
}

impl fmt::Display for ExprError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (at character {})", self.message, self.position + 1)
    }
}

impl std::error::Error for ExprError {}

const FUNCTIONS: [(&str, usize); 7] = [("min", 2), ("max", 2), ("exp", 1), ("log", 1), ("sqrt", 1), ("abs", 1), ("if", 3)];

struct Parser<'a> {
    s: &'a [u8],
    pos: usize,
    vars: &'a [&'a str],
}

impl<'a> Parser<'a> {
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ExprError> {
        Err(ExprError { position: self.pos, message: message.into() })
    }

    fn skip_ws(&mut self) {
        while self.pos < self.s.len() && self.s[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.pos).copied()
    }

    fn eat(&mut self, tok: &str) -> bool {
        self.skip_ws();
        if self.s[self.pos..].starts_with(tok.as_bytes()) {
            self.pos += tok.len();
            true
        } else {
            false
        }
    }

    fn comparison(&mut self) -> Result<Node, ExprError> {
        let lhs = self.sum()?;
        for op in ["<=", ">=", "==", "!=", "<", ">"] {
            if self.eat(op) {
                let rhs = self.sum()?;
                return Ok(Node::Cmp(op, Box::new(lhs), Box::new(rhs)));
            }
        }
        Ok(lhs)
    }

    fn sum(&mut self) -> Result<Node, ExprError> {
        let mut lhs = self.product()?;
        while let Some(c @ (b'+' | b'-')) = self.peek() {
            self.pos += 1;
            lhs = Node::Bin(c as char, Box::new(lhs), Box::new(self.product()?));
        }
        Ok(lhs)
    }

    fn product(&mut self) -> Result<Node, ExprError> {
        let mut lhs = self.unary()?;
        while let Some(c @ (b'*' | b'/')) = self.peek() {
            self.pos += 1;
            lhs = Node::Bin(c as char, Box::new(lhs), Box::new(self.unary()?));
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Result<Node, ExprError> {
        match self.peek() {
            Some(b'-') => {
                self.pos += 1;
                Ok(Node::Neg(Box::new(self.unary()?)))
            }
            Some(b'+') => {
                self.pos += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Node, ExprError> {
        let base = self.atom()?;
        if self.peek() == Some(b'^') {
            self.pos += 1;
            return Ok(Node::Bin('^', Box::new(base), Box::new(self.unary()?)));
        }
        Ok(base)
    }

    fn atom(&mut self) -> Result<Node, ExprError> {
        match self.peek() {
            None => self.err("unexpected end of expression"),
            Some(b'(') => {
                self.pos += 1;
                let e = self.comparison()?;
                if !self.eat(")") {
                    return self.err("expected ')'");
                }
                Ok(e)
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => {
                let start = self.pos;
                while self.pos < self.s.len() && (self.s[self.pos].is_ascii_digit() || self.s[self.pos] == b'.') {
                    self.pos += 1;
                }
                if self.pos < self.s.len() && (self.s[self.pos] == b'e' || self.s[self.pos] == b'E') {
                    let save = self.pos;
                    self.pos += 1;
                    if self.pos < self.s.len() && (self.s[self.pos] == b'+' || self.s[self.pos] == b'-') {
                        self.pos += 1;
                    }
                    let digits = self.pos;
                    while self.pos < self.s.len() && self.s[self.pos].is_ascii_digit() {
                        self.pos += 1;
                    }
                    if self.pos == digits {
                        self.pos = save;
                    }
                }
                let text = std::str::from_utf8(&self.s[start..self.pos]).unwrap();
                match text.parse() {
                    Ok(v) => Ok(Node::Num(v)),
                    Err(_) => {
                        self.pos = start;
                        self.err(format!("bad number {text:?}"))
                    }
                }
            }
            Some(c) if c.is_ascii_alphabetic() || c == b'_' => {
                let start = self.pos;
                while self.pos < self.s.len() && (self.s[self.pos].is_ascii_alphanumeric() || self.s[self.pos] == b'_') {
                    self.pos += 1;
                }
                let name = std::str::from_utf8(&self.s[start..self.pos]).unwrap();
                if self.peek() == Some(b'(') {
                    let Some(&(f, arity)) = FUNCTIONS.iter().find(|(f, _)| *f == name) else {
                        self.pos = start;
                        return self.err(format!("unknown function {name:?}"));
                    };
                    self.pos += 1;
                    let mut args = vec![self.comparison()?];
                    while self.eat(",") {
                        args.push(self.comparison()?);
                    }
                    if !self.eat(")") {
                        return self.err("expected ')' or ','");
                    }
                    if args.len() != arity {
                        return self.err(format!("{f} takes {arity} argument(s), got {}", args.len()));
                    }
                    return Ok(Node::Call(f, args));
                }
                match self.vars.iter().position(|v| *v == name) {
                    Some(i) => Ok(Node::Var(i)),
                    None => {
                        self.pos = start;
                        self.err(format!("unknown variable {name:?} (known: {})", self.vars.join(", ")))
                    }
                }
            }
            Some(c) => self.err(format!("unexpected {:?}", c as char)),
        }
    }
}

impl Expr {
    /// Parse `text`; `vars` are the variable names, later given by position to [`eval`](Self::eval).
    pub fn parse(text: &str, vars: &[&str]) -> Result<Expr, ExprError> {
        let mut p = Parser { s: text.as_bytes(), pos: 0, vars };
        let root = p.comparison()?;
        if p.peek().is_some() {
            return p.err("unexpected text after the expression");
        }
        Ok(Expr { root })
    }

    pub fn eval(&self, vars: &[f64]) -> f64 {
        eval(&self.root, vars)
    }
}

fn eval(n: &Node, vars: &[f64]) -> f64 {
    match n {
        Node::Num(v) => *v,
        Node::Var(i) => vars[*i],
        Node::Neg(a) => -eval(a, vars),
        Node::Bin(op, a, b) => {
            let (x, y) = (eval(a, vars), eval(b, vars));
            match op {
                '+' => x + y,
                '-' => x - y,
                '*' => x * y,
                '/' => x / y,
                _ => x.powf(y),
            }
        }
        Node::Cmp(op, a, b) => {
            let (x, y) = (eval(a, vars), eval(b, vars));
            let r = match *op {
                "<" => x < y,
                "<=" => x <= y,
                ">" => x > y,
                ">=" => x >= y,
                "==" => x == y,
                _ => x != y,
            };
            r as i32 as f64
        }
        Node::Call(f, args) => {
            let a: Vec<f64> = args.iter().map(|x| eval(x, vars)).collect();
            match *f {
                "min" => a[0].min(a[1]),
                "max" => a[0].max(a[1]),
                "exp" => a[0].exp(),
                "log" => a[0].ln(),
                "sqrt" => a[0].sqrt(),
                "abs" => a[0].abs(),
                _ => {
                    if a[0] != 0.0 {
                        a[1]
                    } else {
                        a[2]
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evaluates_with_precedence_and_functions() {
        let vars = ["distance", "x"];
        let e = |s: &str, v: &[f64]| Expr::parse(s, &vars).unwrap().eval(v);
        assert_eq!(e("1 + 2 * 3", &[0.0, 0.0]), 7.0);
        assert_eq!(e("-2^2", &[0.0, 0.0]), -4.0);
        assert_eq!(e("2^3^2", &[0.0, 0.0]), 512.0);
        assert_eq!(e("(1 + 2) * 3 - 4 / 2", &[0.0, 0.0]), 7.0);
        assert_eq!(e("6e-4 * (1 + 1.5 * min(distance, 500) / 100)", &[700.0, 0.0]), 6e-4 * (1.0 + 1.5 * 5.0));
        assert_eq!(e("if(distance > 100, 1, 2) + x", &[150.0, 0.25]), 1.25);
        assert_eq!(e("distance <= 100", &[100.0, 0.0]), 1.0);
        assert_eq!(e("max(abs(-3), sqrt(4)) + exp(0) + log(1)", &[0.0, 0.0]), 4.0);
    }

    #[test]
    fn reports_errors_with_positions() {
        let vars = ["distance"];
        assert_eq!(Expr::parse("1 + dist", &vars).unwrap_err().position, 4);
        assert!(Expr::parse("min(1)", &vars).is_err());
        assert!(Expr::parse("(1 + 2", &vars).is_err());
        assert!(Expr::parse("1 2", &vars).is_err());
        assert!(Expr::parse("foo(1)", &vars).is_err());
    }
}
