//! Small arithmetic expressions for per-segment biophysics in cell templates.
//!
//! MiV's hoc templates set some parameters per segment from the segment's path distance to the soma (e.g.
//! `gmax = 6e-4*(1+1.5*d/100)` on apical dendrites) and insert some mechanisms only where a condition holds
//! (`diam > 0.5 && distance(0.5) < 500`). Templates in YAML express these as strings evaluated by this module:
//! numbers, variables, `+ - * / ^`, unary minus, comparisons (`< <= > >= == !=`), `&&`, `||`, `!`,
//! parentheses and the functions `exp log log10 sqrt abs min max pow floor ceil`. Booleans are 1.0 and 0.0.

use miv_nmodl::ops::{bin, un, Bin, Un};

#[derive(Debug, Clone, PartialEq)]
enum Node {
    Num(f64),
    Var(usize),
    Neg(Box<Node>),
    Not(Box<Node>),
    Bin(Bin, Box<Node>, Box<Node>),
    Call(Func, Vec<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Func {
    Exp,
    Log,
    Log10,
    Sqrt,
    Abs,
    Min,
    Max,
    Pow,
    Floor,
    Ceil,
}

impl Func {
    fn lookup(name: &str) -> Option<(Func, usize)> {
        Some(match name {
            "exp" => (Func::Exp, 1),
            "log" => (Func::Log, 1),
            "log10" => (Func::Log10, 1),
            "sqrt" => (Func::Sqrt, 1),
            "abs" | "fabs" => (Func::Abs, 1),
            "min" => (Func::Min, 2),
            "max" => (Func::Max, 2),
            "pow" => (Func::Pow, 2),
            "floor" => (Func::Floor, 1),
            "ceil" => (Func::Ceil, 1),
            _ => return None,
        })
    }
}

/// A parsed expression over a fixed list of variable names.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr {
    root: Node,
    source: String,
}

/// A parse error with the 0-based character position.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("in expression '{text}' at column {}: {message}", .column + 1)]
pub struct ExprError {
    pub text: String,
    pub column: usize,
    pub message: String,
}

impl Expr {
    /// Parse `src`; `vars` lists the variable names it may use (their index is the position in `vars`).
    pub fn parse(src: &str, vars: &[&str]) -> Result<Expr, ExprError> {
        let mut p = Parser { src, chars: src.char_indices().collect(), pos: 0, vars };
        let root = p.or()?;
        p.skip_ws();
        if p.pos < p.chars.len() {
            return Err(p.err("unexpected text after the expression"));
        }
        Ok(Expr { root, source: src.to_string() })
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluate with `values[i]` bound to the i-th variable name given to `parse`.
    pub fn eval(&self, values: &[f64]) -> f64 {
        eval(&self.root, values)
    }

    /// The constant value, if the expression uses no variables.
    pub fn as_constant(&self) -> Option<f64> {
        fn uses_vars(n: &Node) -> bool {
            match n {
                Node::Num(_) => false,
                Node::Var(_) => true,
                Node::Neg(a) | Node::Not(a) => uses_vars(a),
                Node::Bin(_, a, b) => uses_vars(a) || uses_vars(b),
                Node::Call(_, args) => args.iter().any(uses_vars),
            }
        }
        (!uses_vars(&self.root)).then(|| eval(&self.root, &[]))
    }
}

fn eval(n: &Node, v: &[f64]) -> f64 {
    match n {
        Node::Num(x) => *x,
        Node::Var(i) => v[*i],
        Node::Neg(a) => un(Un::Neg, eval(a, v)),
        Node::Not(a) => un(Un::Not, eval(a, v)),
        Node::Bin(op, l, r) => bin(*op, eval(l, v), eval(r, v)),
        Node::Call(f, args) => {
            let a = eval(&args[0], v);
            match f {
                Func::Exp => a.exp(),
                Func::Log => a.ln(),
                Func::Log10 => a.log10(),
                Func::Sqrt => a.sqrt(),
                Func::Abs => a.abs(),
                Func::Floor => a.floor(),
                Func::Ceil => a.ceil(),
                Func::Min => a.min(eval(&args[1], v)),
                Func::Max => a.max(eval(&args[1], v)),
                Func::Pow => a.powf(eval(&args[1], v)),
            }
        }
    }
}

struct Parser<'a> {
    src: &'a str,
    chars: Vec<(usize, char)>,
    pos: usize,
    vars: &'a [&'a str],
}

impl Parser<'_> {
    fn err(&self, message: &str) -> ExprError {
        ExprError { text: self.src.to_string(), column: self.pos.min(self.chars.len()), message: message.to_string() }
    }
    fn skip_ws(&mut self) {
        while self.pos < self.chars.len() && self.chars[self.pos].1.is_whitespace() {
            self.pos += 1;
        }
    }
    fn peek(&mut self) -> Option<char> {
        self.skip_ws();
        self.chars.get(self.pos).map(|c| c.1)
    }
    fn eat(&mut self, s: &str) -> bool {
        self.skip_ws();
        let n = s.chars().count();
        if self.pos + n <= self.chars.len() && self.chars[self.pos..self.pos + n].iter().map(|c| c.1).eq(s.chars()) {
            self.pos += n;
            true
        } else {
            false
        }
    }
    fn or(&mut self) -> Result<Node, ExprError> {
        let mut l = self.and()?;
        while self.eat("||") {
            l = Node::Bin(Bin::Or, Box::new(l), Box::new(self.and()?));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Node, ExprError> {
        let mut l = self.cmp()?;
        while self.eat("&&") {
            l = Node::Bin(Bin::And, Box::new(l), Box::new(self.cmp()?));
        }
        Ok(l)
    }
    fn cmp(&mut self) -> Result<Node, ExprError> {
        let l = self.sum()?;
        for (s, op) in
            [("<=", Bin::Le), (">=", Bin::Ge), ("==", Bin::Eq), ("!=", Bin::Ne), ("<", Bin::Lt), (">", Bin::Gt)]
        {
            if self.eat(s) {
                return Ok(Node::Bin(op, Box::new(l), Box::new(self.sum()?)));
            }
        }
        Ok(l)
    }
    fn sum(&mut self) -> Result<Node, ExprError> {
        let mut l = self.product()?;
        loop {
            if self.eat("+") {
                l = Node::Bin(Bin::Add, Box::new(l), Box::new(self.product()?));
            } else if self.eat("-") {
                l = Node::Bin(Bin::Sub, Box::new(l), Box::new(self.product()?));
            } else {
                return Ok(l);
            }
        }
    }
    fn product(&mut self) -> Result<Node, ExprError> {
        let mut l = self.unary()?;
        loop {
            if self.eat("*") {
                l = Node::Bin(Bin::Mul, Box::new(l), Box::new(self.unary()?));
            } else if self.eat("/") {
                l = Node::Bin(Bin::Div, Box::new(l), Box::new(self.unary()?));
            } else {
                return Ok(l);
            }
        }
    }
    fn unary(&mut self) -> Result<Node, ExprError> {
        if self.eat("-") {
            return Ok(Node::Neg(Box::new(self.unary()?)));
        }
        if self.eat("+") {
            return self.unary();
        }
        if self.peek() == Some('!') && !self.eat("!=") {
            self.pos += 1;
            return Ok(Node::Not(Box::new(self.unary()?)));
        }
        self.power()
    }
    fn power(&mut self) -> Result<Node, ExprError> {
        let base = self.atom()?;
        if self.eat("^") || self.eat("**") {
            // Right-associative; binds tighter than unary minus on its left, as in NMODL and hoc.
            let exp = self.unary()?;
            return Ok(Node::Bin(Bin::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }
    fn atom(&mut self) -> Result<Node, ExprError> {
        match self.peek() {
            Some('(') => {
                self.pos += 1;
                let e = self.or()?;
                if !self.eat(")") {
                    return Err(self.err("expected ')'"));
                }
                Ok(e)
            }
            Some(c) if c.is_ascii_digit() || c == '.' => self.number(),
            Some(c) if c.is_alphabetic() || c == '_' => {
                let start = self.pos;
                while self.pos < self.chars.len()
                    && (self.chars[self.pos].1.is_alphanumeric() || self.chars[self.pos].1 == '_')
                {
                    self.pos += 1;
                }
                let name: String = self.chars[start..self.pos].iter().map(|c| c.1).collect();
                if self.peek() == Some('(') {
                    let Some((f, arity)) = Func::lookup(&name) else {
                        self.pos = start;
                        return Err(self.err(&format!("unknown function '{name}'")));
                    };
                    self.pos += 1;
                    let mut args = vec![self.or()?];
                    while self.eat(",") {
                        args.push(self.or()?);
                    }
                    if !self.eat(")") {
                        return Err(self.err("expected ')' after function arguments"));
                    }
                    if args.len() != arity {
                        self.pos = start;
                        return Err(self.err(&format!("{name}() takes {arity} argument(s), got {}", args.len())));
                    }
                    return Ok(Node::Call(f, args));
                }
                match name.as_str() {
                    "true" => return Ok(Node::Num(1.0)),
                    "false" => return Ok(Node::Num(0.0)),
                    "pi" | "PI" => return Ok(Node::Num(std::f64::consts::PI)),
                    _ => {}
                }
                match self.vars.iter().position(|v| *v == name) {
                    Some(i) => Ok(Node::Var(i)),
                    None => {
                        self.pos = start;
                        Err(self.err(&format!("unknown variable '{name}' (known: {})", self.vars.join(", "))))
                    }
                }
            }
            Some(_) => Err(self.err("expected a number, a variable, a function call or '('")),
            None => Err(self.err("unexpected end of expression")),
        }
    }
    fn number(&mut self) -> Result<Node, ExprError> {
        let start = self.pos;
        let is = |p: &Self, f: &dyn Fn(char) -> bool| p.pos < p.chars.len() && f(p.chars[p.pos].1);
        while is(self, &|c| c.is_ascii_digit() || c == '.') {
            self.pos += 1;
        }
        if is(self, &|c| c == 'e' || c == 'E') {
            let save = self.pos;
            self.pos += 1;
            if is(self, &|c| c == '+' || c == '-') {
                self.pos += 1;
            }
            if is(self, &|c| c.is_ascii_digit()) {
                while is(self, &|c| c.is_ascii_digit()) {
                    self.pos += 1;
                }
            } else {
                self.pos = save;
            }
        }
        let text: String = self.chars[start..self.pos].iter().map(|c| c.1).collect();
        text.parse::<f64>().map(Node::Num).map_err(|_| {
            self.pos = start;
            self.err(&format!("bad number '{text}'"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(s: &str, vars: &[&str], vals: &[f64]) -> f64 {
        Expr::parse(s, vars).unwrap().eval(vals)
    }

    #[test]
    fn arithmetic_and_precedence() {
        assert_eq!(ev("1 + 2 * 3", &[], &[]), 7.0);
        assert_eq!(ev("(1 + 2) * 3", &[], &[]), 9.0);
        assert_eq!(ev("2^3^2", &[], &[]), 512.0);
        assert_eq!(ev("-2^2", &[], &[]), -4.0);
        assert_eq!(ev("10 - 4 - 3", &[], &[]), 3.0);
        assert_eq!(ev("1e-3 * 2E2", &[], &[]), 0.2);
        assert!((ev("6e-4*(1+1.5*min(d,500)/100)", &["d"], &[700.0]) - 6e-4 * 8.5).abs() < 1e-15);
    }

    #[test]
    fn logic_and_comparisons() {
        let vars = ["diam", "distance"];
        let cond = Expr::parse("diam > 0.5 && distance < 500", &vars).unwrap();
        assert_eq!(cond.eval(&[1.0, 100.0]), 1.0);
        assert_eq!(cond.eval(&[0.4, 100.0]), 0.0);
        assert_eq!(cond.eval(&[1.0, 600.0]), 0.0);
        assert_eq!(ev("!(1 < 2) || 3 != 3", &[], &[]), 0.0);
        assert_eq!(ev("1 <= 1", &[], &[]), 1.0);
    }

    #[test]
    fn functions() {
        assert!((ev("exp(log(5))", &[], &[]) - 5.0).abs() < 1e-12);
        assert_eq!(ev("max(1, pow(2, 3))", &[], &[]), 8.0);
        assert_eq!(ev("abs(-3) + floor(2.7) + ceil(0.2)", &[], &[]), 6.0);
    }

    #[test]
    fn errors_name_the_column() {
        let e = Expr::parse("1 + foo", &["d"]).unwrap_err();
        assert_eq!(e.column, 4);
        assert!(e.to_string().contains("unknown variable 'foo'"));
        assert!(Expr::parse("min(1)", &[]).unwrap_err().message.contains("takes 2"));
        assert!(Expr::parse("(1 + 2", &[]).unwrap_err().message.contains("')'"));
        assert!(Expr::parse("1 2", &[]).is_err());
        assert!(Expr::parse("", &[]).is_err());
    }

    #[test]
    fn constants_fold() {
        assert_eq!(Expr::parse("2*3", &["d"]).unwrap().as_constant(), Some(6.0));
        assert_eq!(Expr::parse("2*d", &["d"]).unwrap().as_constant(), None);
    }
}
