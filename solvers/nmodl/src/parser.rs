//! Recursive-descent parser for the NMODL subset MiV's mechanisms use. Statements need no separator
//! (`a = 1/s  b = 2` on one line is two statements), as in nocmodl. Constructs that are valid NMODL
//! but not implemented are rejected here by name, so a user learns exactly what is missing.

use crate::ast::*;
use crate::error::{Pos, Result, Source};
use crate::lexer::{describe, tokenize, Tok, Token};
use crate::ops::Bin;

pub fn parse(text: &str, source: &Source) -> Result<Module> {
    let tokens = tokenize(text, source)?;
    let mut p = Parser { toks: tokens, i: 0, src: text, source };
    p.module()
}

struct Parser<'a> {
    toks: Vec<Token>,
    i: usize,
    src: &'a str,
    source: &'a Source,
}

/// Largest TABLE (points cost memory in every instance set).
pub const MAX_TABLE_INTERVALS: u32 = 1_000_000;

/// Keywords that start a top-level block but that miv does not implement.
const UNSUPPORTED_BLOCKS: &[(&str, &str)] = &[
    ("LINEAR", "LINEAR blocks"),
    ("NONLINEAR", "NONLINEAR blocks"),
    ("DISCRETE", "DISCRETE blocks"),
    ("PARTIAL", "PARTIAL blocks"),
    ("FUNCTION_TABLE", "FUNCTION_TABLE"),
    ("BEFORE", "BEFORE blocks"),
    ("AFTER", "AFTER blocks"),
    ("CONSTRUCTOR", "CONSTRUCTOR blocks"),
    ("INCLUDE", "INCLUDE"),
    ("DEFINE", "DEFINE"),
    ("TERMINAL", "TERMINAL blocks"),
    ("PLOT", "PLOT"),
    ("SENS", "SENS"),
    ("MATCH", "MATCH blocks"),
];

/// Statement keywords that are valid NMODL but not implemented.
const UNSUPPORTED_STMTS: &[(&str, &str)] = &[
    ("while", "WHILE loops"),
    ("FROM", "FROM ... TO loops"),
    ("COMPARTMENT", "COMPARTMENT statements (kinetic volumes)"),
    ("LONGITUDINAL_DIFFUSION", "LONGITUDINAL_DIFFUSION"),
    ("WATCH", "WATCH statements"),
    ("FOR_NETCONS", "FOR_NETCONS loops"),
    ("PROTECT", "PROTECT statements"),
    ("MUTEXLOCK", "MUTEXLOCK"),
    ("MUTEXUNLOCK", "MUTEXUNLOCK"),
    ("LAG", "LAG statements"),
    ("SWEEP", "SWEEP"),
    ("CONDUCTANCE", "CONDUCTANCE hints"),
    ("RESET", "RESET"),
    ("SOLVEFOR", "SOLVEFOR"),
];

impl<'a> Parser<'a> {
    fn peek(&self) -> &Tok {
        &self.toks[self.i].tok
    }
    fn peek_at(&self, k: usize) -> &Tok {
        let j = (self.i + k).min(self.toks.len() - 1);
        &self.toks[j].tok
    }
    fn pos(&self) -> Pos {
        self.toks[self.i].pos
    }
    fn next(&mut self) -> Token {
        let t = self.toks[self.i].clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }
    fn is_word(&self, w: &str) -> bool {
        matches!(self.peek(), Tok::Ident(s) if s == w)
    }
    fn eat(&mut self, t: &Tok) -> bool {
        if self.peek() == t {
            self.next();
            true
        } else {
            false
        }
    }
    fn eat_word(&mut self, w: &str) -> bool {
        if self.is_word(w) {
            self.next();
            true
        } else {
            false
        }
    }
    fn err_expected(&self, what: &str) -> crate::error::Error {
        self.source.syntax(self.pos(), format!("expected {what}, found {}", describe(self.peek())))
    }
    fn expect(&mut self, t: &Tok, what: &str) -> Result<()> {
        if self.eat(t) {
            Ok(())
        } else {
            Err(self.err_expected(what))
        }
    }
    fn ident(&mut self, what: &str) -> Result<(String, Pos)> {
        match self.peek().clone() {
            Tok::Ident(s) => {
                let p = self.pos();
                self.next();
                Ok((s, p))
            }
            _ => Err(self.err_expected(what)),
        }
    }
    fn unsupported(&self, pos: Pos, what: &str) -> crate::error::Error {
        self.source.unsupported(pos, format!("{what} are not supported by miv's NMODL compiler"))
    }

    /// `( ... )` read as raw text (units), the opening parenthesis being the current token.
    fn units(&mut self) -> Result<String> {
        let open = self.next();
        debug_assert_eq!(open.tok, Tok::LParen);
        let mut depth = 1;
        loop {
            let t = self.next();
            match t.tok {
                Tok::LParen => depth += 1,
                Tok::RParen => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(self.src[open.end..t.start].trim().to_string());
                    }
                }
                Tok::Eof => return Err(self.source.syntax(open.pos, "units without closing ')'")),
                _ => {}
            }
        }
    }

    fn opt_units(&mut self) -> Result<Option<String>> {
        if *self.peek() == Tok::LParen {
            Ok(Some(self.units()?))
        } else {
            Ok(None)
        }
    }

    /// `<lo, hi>` limits after a declaration (ignored).
    fn opt_limits(&mut self) -> Result<()> {
        if *self.peek() == Tok::Lt {
            let p = self.pos();
            self.next();
            loop {
                match self.next().tok {
                    Tok::Gt => return Ok(()),
                    Tok::Eof => return Err(self.source.syntax(p, "limits '<lo, hi>' without closing '>'")),
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn signed_number(&mut self, what: &str) -> Result<f64> {
        let neg = if self.eat(&Tok::Minus) {
            true
        } else {
            self.eat(&Tok::Plus);
            false
        };
        match *self.peek() {
            Tok::Number(x, _) => {
                self.next();
                Ok(if neg { -x } else { x })
            }
            _ => Err(self.err_expected(what)),
        }
    }

    fn module(&mut self) -> Result<Module> {
        let mut items = Vec::new();
        loop {
            let pos = self.pos();
            let word = match self.peek().clone() {
                Tok::Eof => break,
                Tok::Verbatim(text) => {
                    self.next();
                    items.push(Item::Verbatim(text, pos));
                    continue;
                }
                Tok::Ident(w) => w,
                _ => return Err(self.err_expected("a block keyword (NEURON, PARAMETER, BREAKPOINT, ...)")),
            };
            if let Some((_, what)) = UNSUPPORTED_BLOCKS.iter().find(|(k, _)| *k == word) {
                return Err(self.unsupported(pos, what));
            }
            self.next();
            let item = match word.as_str() {
                "NEURON" => Item::Neuron(self.neuron_block()?, pos),
                "UNITS" => Item::Units(self.units_block()?),
                "PARAMETER" => Item::Parameter(self.decl_block()?),
                "ASSIGNED" => Item::Assigned(self.decl_block()?),
                "STATE" => Item::State(self.decl_block()?),
                "CONSTANT" => Item::Constant(self.decl_block()?),
                "INDEPENDENT" => {
                    self.skip_braces()?;
                    Item::Independent
                }
                "LOCAL" => Item::Local(self.name_list()?),
                "INITIAL" => Item::Initial(self.block()?, pos),
                "BREAKPOINT" => Item::Breakpoint(self.block()?, pos),
                "DERIVATIVE" => Item::Derivative(self.proc(false)?),
                "KINETIC" => Item::Kinetic(self.proc(false)?),
                "PROCEDURE" => Item::Procedure(self.proc(true)?),
                "FUNCTION" => Item::Function(self.proc(true)?),
                "NET_RECEIVE" => {
                    let args = self.arg_list()?;
                    let body = self.block()?;
                    Item::NetReceive(Proc { name: "NET_RECEIVE".into(), pos, args, body })
                }
                "DESTRUCTOR" => Item::Destructor(self.block()?, pos),
                _ => {
                    return Err(self.source.syntax(pos, format!("unknown top-level keyword '{word}'")));
                }
            };
            items.push(item);
        }
        Ok(Module { items })
    }

    fn skip_braces(&mut self) -> Result<()> {
        let p = self.pos();
        self.expect(&Tok::LBrace, "'{'")?;
        let mut depth = 1;
        while depth > 0 {
            match self.next().tok {
                Tok::LBrace => depth += 1,
                Tok::RBrace => depth -= 1,
                Tok::Eof => return Err(self.source.syntax(p, "block without closing '}'")),
                _ => {}
            }
        }
        Ok(())
    }

    fn name_list(&mut self) -> Result<Vec<(String, Pos)>> {
        let mut v = vec![self.ident("a name")?];
        while self.eat(&Tok::Comma) {
            v.push(self.ident("a name")?);
        }
        Ok(v)
    }

    fn neuron_block(&mut self) -> Result<Vec<NeuronStmt>> {
        const KEYS: &[&str] = &[
            "SUFFIX",
            "POINT_PROCESS",
            "ARTIFICIAL_CELL",
            "USEION",
            "NONSPECIFIC_CURRENT",
            "ELECTRODE_CURRENT",
            "RANGE",
            "GLOBAL",
            "POINTER",
            "BBCOREPOINTER",
            "EXTERNAL",
            "THREADSAFE",
            "READ",
            "WRITE",
            "VALENCE",
        ];
        self.expect(&Tok::LBrace, "'{' after NEURON")?;
        let mut out = Vec::new();
        // A name list in the NEURON block: commas optional, ends at the next keyword.
        let list = |p: &mut Self| -> Result<Vec<(String, Pos)>> {
            let mut v = vec![p.ident("a name")?];
            loop {
                p.eat(&Tok::Comma);
                match p.peek() {
                    Tok::Ident(s) if !KEYS.contains(&s.as_str()) => v.push(p.ident("a name")?),
                    _ => return Ok(v),
                }
            }
        };
        loop {
            let pos = self.pos();
            if self.eat(&Tok::RBrace) {
                return Ok(out);
            }
            let (w, _) = self.ident("a NEURON block keyword")?;
            let stmt = match w.as_str() {
                "SUFFIX" => {
                    let (n, p) = self.ident("a mechanism name")?;
                    NeuronStmt::Suffix(n, p)
                }
                "POINT_PROCESS" => {
                    let (n, p) = self.ident("a mechanism name")?;
                    NeuronStmt::PointProcess(n, p)
                }
                "ARTIFICIAL_CELL" => {
                    let (n, p) = self.ident("a mechanism name")?;
                    NeuronStmt::ArtificialCell(n, p)
                }
                "USEION" => {
                    let (ion, p) = self.ident("an ion name")?;
                    let mut u = UseIon { ion, pos: p, read: vec![], write: vec![], valence: None };
                    loop {
                        if self.eat_word("READ") {
                            u.read.extend(list(self)?);
                        } else if self.eat_word("WRITE") {
                            u.write.extend(list(self)?);
                        } else if self.eat_word("VALENCE") {
                            u.valence = Some(self.signed_number("a valence")?);
                        } else {
                            break;
                        }
                    }
                    NeuronStmt::UseIon(u)
                }
                "NONSPECIFIC_CURRENT" => NeuronStmt::NonspecificCurrent(list(self)?),
                "ELECTRODE_CURRENT" => NeuronStmt::ElectrodeCurrent(list(self)?),
                "RANGE" => NeuronStmt::Range(list(self)?),
                "GLOBAL" => NeuronStmt::Global(list(self)?),
                "POINTER" => NeuronStmt::Pointer(list(self)?),
                "BBCOREPOINTER" => NeuronStmt::BbcorePointer(list(self)?),
                "EXTERNAL" => NeuronStmt::External(list(self)?),
                "THREADSAFE" => NeuronStmt::ThreadSafe,
                "RANDOM" => return Err(self.unsupported(pos, "RANDOM variables (NEURON 9 random streams)")),
                "SECTION" => return Err(self.unsupported(pos, "SECTION statements")),
                other => return Err(self.source.syntax(pos, format!("unknown NEURON block keyword '{other}'"))),
            };
            out.push(stmt);
        }
    }

    fn units_block(&mut self) -> Result<Vec<UnitsDef>> {
        self.expect(&Tok::LBrace, "'{' after UNITS")?;
        let mut out = Vec::new();
        loop {
            if self.eat(&Tok::RBrace) {
                return Ok(out);
            }
            if *self.peek() == Tok::LParen {
                let name = self.units()?;
                self.expect(&Tok::Assign, "'=' in a units definition")?;
                if *self.peek() != Tok::LParen {
                    return Err(self.err_expected("'(' starting the units definition"));
                }
                let def = self.units()?;
                out.push(UnitsDef::Alias { name, def });
                continue;
            }
            let (name, pos) = self.ident("a units definition")?;
            self.expect(&Tok::Assign, "'=' in a units constant")?;
            if *self.peek() == Tok::LParen {
                let from = self.units()?;
                if *self.peek() != Tok::LParen {
                    return Err(self.err_expected("'(' with the units the constant is expressed in"));
                }
                let to = self.units()?;
                out.push(UnitsDef::Factor { name, pos, from, to });
            } else {
                let value = self.signed_number("a number")?;
                self.opt_units()?;
                out.push(UnitsDef::Value { name, pos, value });
            }
        }
    }

    fn decl_block(&mut self) -> Result<Vec<Decl>> {
        self.expect(&Tok::LBrace, "'{'")?;
        let mut out = Vec::new();
        loop {
            if self.eat(&Tok::RBrace) {
                return Ok(out);
            }
            let (name, pos) = self.ident("a variable name")?;
            if *self.peek() == Tok::LBracket {
                return Err(self.unsupported(pos, "array variables"));
            }
            let mut d = Decl { name, pos, value: None, units: None, start: None };
            if self.eat(&Tok::Assign) {
                d.value = Some(self.signed_number("a number")?);
            }
            d.units = self.opt_units()?;
            loop {
                if self.eat_word("FROM") {
                    self.signed_number("a number")?;
                    if !self.eat_word("TO") {
                        return Err(self.err_expected("TO"));
                    }
                    self.signed_number("a number")?;
                } else if self.eat_word("START") {
                    d.start = Some(self.signed_number("a number")?);
                } else if *self.peek() == Tok::Lt {
                    self.opt_limits()?;
                } else {
                    break;
                }
            }
            out.push(d);
        }
    }

    /// `(a, b (mV))` — an argument list with optional units; empty `()` allowed, or none at all.
    fn arg_list(&mut self) -> Result<Vec<(String, Pos)>> {
        let mut args = Vec::new();
        if !self.eat(&Tok::LParen) {
            return Ok(args);
        }
        if self.eat(&Tok::RParen) {
            return Ok(args);
        }
        loop {
            args.push(self.ident("an argument name")?);
            self.opt_units()?;
            if self.eat(&Tok::RParen) {
                return Ok(args);
            }
            self.expect(&Tok::Comma, "',' or ')' in the argument list")?;
        }
    }

    fn proc(&mut self, with_args: bool) -> Result<Proc> {
        let (name, pos) = self.ident("a block name")?;
        let args = if with_args { self.arg_list()? } else { Vec::new() };
        if with_args {
            // Return units of a FUNCTION.
            self.opt_units()?;
        }
        let body = self.block()?;
        Ok(Proc { name, pos, args, body })
    }

    fn block(&mut self) -> Result<Vec<Stmt>> {
        self.expect(&Tok::LBrace, "'{'")?;
        let mut out = Vec::new();
        loop {
            if self.eat(&Tok::RBrace) {
                return Ok(out);
            }
            if *self.peek() == Tok::Eof {
                return Err(self.err_expected("'}'"));
            }
            out.push(self.stmt()?);
        }
    }

    fn stmt(&mut self) -> Result<Stmt> {
        let pos = self.pos();
        let kind = match self.peek().clone() {
            Tok::Verbatim(text) => {
                self.next();
                StmtKind::Verbatim(text)
            }
            Tok::LBrace => StmtKind::Block(self.block()?),
            Tok::Tilde => {
                self.next();
                self.reaction()?
            }
            Tok::Prime(state, order) => {
                self.next();
                self.expect(&Tok::Assign, "'=' after a derivative")?;
                StmtKind::Derivative { state, order, value: self.expr()? }
            }
            Tok::Ident(w) => {
                if let Some((_, what)) = UNSUPPORTED_STMTS.iter().find(|(k, _)| *k == w) {
                    return Err(self.unsupported(pos, what));
                }
                match w.as_str() {
                    "LOCAL" => {
                        self.next();
                        StmtKind::Local(self.name_list()?)
                    }
                    "if" => {
                        self.next();
                        self.if_stmt()?
                    }
                    "SOLVE" => {
                        self.next();
                        let (block, _) = self.ident("the name of the block to SOLVE")?;
                        let mut method = None;
                        let mut steadystate = None;
                        if self.eat_word("METHOD") {
                            method = Some(self.ident("a method name")?.0);
                        } else if self.eat_word("STEADYSTATE") {
                            steadystate = Some(self.ident("a method name")?.0);
                        }
                        if self.is_word("IFERROR") {
                            return Err(self.unsupported(self.pos(), "IFERROR clauses"));
                        }
                        StmtKind::Solve { block, method, steadystate }
                    }
                    "TABLE" => {
                        self.next();
                        self.table()?
                    }
                    "CONSERVE" => {
                        self.next();
                        let terms = self.reactants()?;
                        self.expect(&Tok::Assign, "'=' in CONSERVE")?;
                        StmtKind::Conserve { terms, value: self.expr()? }
                    }
                    "INITIAL" => {
                        self.next();
                        StmtKind::NetInitial(self.block()?)
                    }
                    _ => {
                        if *self.peek_at(1) == Tok::Assign {
                            let (name, _) = self.ident("a name")?;
                            self.next();
                            StmtKind::Assign { name, value: self.expr()? }
                        } else if *self.peek_at(1) == Tok::LBracket {
                            return Err(self.unsupported(pos, "array variables"));
                        } else {
                            let e = self.expr()?;
                            if !matches!(e, Expr::Call(..)) {
                                return Err(self
                                    .source
                                    .syntax(pos, "expected a statement (assignment or call), found an expression"));
                            }
                            StmtKind::Call(e)
                        }
                    }
                }
            }
            _ => return Err(self.err_expected("a statement")),
        };
        Ok(Stmt { kind, pos })
    }

    fn if_stmt(&mut self) -> Result<StmtKind> {
        self.expect(&Tok::LParen, "'(' after if")?;
        let cond = self.expr()?;
        self.expect(&Tok::RParen, "')' closing the if condition")?;
        let then = self.block()?;
        let els = if self.eat_word("else") {
            if self.is_word("if") {
                let pos = self.pos();
                self.next();
                Some(vec![Stmt { kind: self.if_stmt()?, pos }])
            } else {
                Some(self.block()?)
            }
        } else {
            None
        };
        Ok(StmtKind::If { cond, then, els })
    }

    fn table(&mut self) -> Result<StmtKind> {
        let mut names = Vec::new();
        let mut depend = Vec::new();
        if matches!(self.peek(), Tok::Ident(s) if s != "DEPEND" && s != "FROM") {
            names = self.name_list()?;
        }
        if self.eat_word("DEPEND") {
            depend = self.name_list()?;
        }
        if !self.eat_word("FROM") {
            return Err(self.err_expected("FROM in TABLE"));
        }
        let from = self.expr()?;
        if !self.eat_word("TO") {
            return Err(self.err_expected("TO in TABLE"));
        }
        let to = self.expr()?;
        if !self.eat_word("WITH") {
            return Err(self.err_expected("WITH in TABLE"));
        }
        let with = match *self.peek() {
            Tok::Number(x, true) if (1.0..=MAX_TABLE_INTERVALS as f64).contains(&x) => {
                self.next();
                x as u32
            }
            Tok::Number(x, true) if x > MAX_TABLE_INTERVALS as f64 => {
                return Err(self.source.unsupported(
                    self.pos(),
                    format!("TABLE WITH {x}: at most {MAX_TABLE_INTERVALS} intervals are supported"),
                ))
            }
            _ => return Err(self.err_expected("a positive integer number of table intervals")),
        };
        Ok(StmtKind::Table { names, depend, from, to, with })
    }

    fn reactant(&mut self) -> Result<Reactant> {
        let pos = self.pos();
        let coef = match *self.peek() {
            Tok::Number(x, true) if (1.0..=100.0).contains(&x) => {
                self.next();
                x as u32
            }
            Tok::Number(x, _) => {
                return Err(self
                    .source
                    .syntax(pos, format!("stoichiometric coefficient {x}: expected an integer from 1 to 100")))
            }
            _ => 1,
        };
        let (name, npos) = self.ident("a state name")?;
        if *self.peek() == Tok::LBracket {
            return Err(self.unsupported(npos, "array variables"));
        }
        Ok(Reactant { coef, name, pos: if coef == 1 { npos } else { pos } })
    }

    fn reactants(&mut self) -> Result<Vec<Reactant>> {
        let mut v = vec![self.reactant()?];
        while self.eat(&Tok::Plus) {
            v.push(self.reactant()?);
        }
        Ok(v)
    }

    fn reaction(&mut self) -> Result<StmtKind> {
        let lhs = self.reactants()?;
        match self.peek() {
            Tok::React => {
                self.next();
                let rhs = self.reactants()?;
                self.expect(&Tok::LParen, "'(' with the rate constants")?;
                let kf = self.expr()?;
                self.expect(&Tok::Comma, "',' between forward and backward rates")?;
                let kb = self.expr()?;
                self.expect(&Tok::RParen, "')'")?;
                Ok(StmtKind::Reaction { lhs, rhs, kf, kb })
            }
            Tok::LtLt => {
                self.next();
                if lhs.len() != 1 || lhs[0].coef != 1 {
                    return Err(self.source.syntax(lhs[0].pos, "'<<' takes a single state on the left"));
                }
                self.expect(&Tok::LParen, "'(' with the flux")?;
                let flux = self.expr()?;
                self.expect(&Tok::RParen, "')'")?;
                Ok(StmtKind::Flux { state: lhs.into_iter().next().unwrap(), flux })
            }
            Tok::Minus if *self.peek_at(1) == Tok::Gt => Err(self.unsupported(self.pos(), "'->' reactions")),
            _ => Err(self.err_expected("'<->' or '<<' in a reaction")),
        }
    }

    // Expressions, precedence as nocmodl: || < && < relations < + - < * / % < unary < ^ (right).
    pub(crate) fn expr(&mut self) -> Result<Expr> {
        self.binary(0)
    }

    /// Left-associative binary operators of precedence `level` and above.
    fn binary(&mut self, level: usize) -> Result<Expr> {
        fn op_at(level: usize, t: &Tok) -> Option<Bin> {
            Some(match (level, t) {
                (0, Tok::Or) => Bin::Or,
                (1, Tok::And) => Bin::And,
                (2, Tok::Lt) => Bin::Lt,
                (2, Tok::Le) => Bin::Le,
                (2, Tok::Gt) => Bin::Gt,
                (2, Tok::Ge) => Bin::Ge,
                (2, Tok::EqEq) => Bin::Eq,
                (2, Tok::Ne) => Bin::Ne,
                (3, Tok::Plus) => Bin::Add,
                (3, Tok::Minus) => Bin::Sub,
                (4, Tok::Star) => Bin::Mul,
                (4, Tok::Slash) => Bin::Div,
                (4, Tok::Percent) => Bin::Fmod,
                _ => return None,
            })
        }
        if level > 4 {
            return self.unary();
        }
        let mut a = self.binary(level + 1)?;
        while let Some(op) = op_at(level, self.peek()) {
            self.next();
            let b = self.binary(level + 1)?;
            a = Expr::Bin(op, Box::new(a), Box::new(b));
        }
        Ok(a)
    }
    fn unary(&mut self) -> Result<Expr> {
        if self.eat(&Tok::Minus) {
            return Ok(Expr::Neg(Box::new(self.unary()?)));
        }
        if self.eat(&Tok::Plus) {
            return self.unary();
        }
        if self.eat(&Tok::Not) {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.power()
    }
    fn power(&mut self) -> Result<Expr> {
        let base = self.primary()?;
        if self.eat(&Tok::Caret) {
            let exp = self.unary()?;
            return Ok(Expr::Bin(Bin::Pow, Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }
    fn primary(&mut self) -> Result<Expr> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Number(x, _) => {
                self.next();
                // A number may carry units: `50e-6 (mM)`.
                if *self.peek() == Tok::LParen {
                    self.units()?;
                }
                Ok(Expr::Num(x))
            }
            Tok::Str(s) => {
                self.next();
                Ok(Expr::Str(s))
            }
            Tok::LParen => {
                self.next();
                let e = self.expr()?;
                self.expect(&Tok::RParen, "')'")?;
                Ok(e)
            }
            Tok::Ident(name) => {
                self.next();
                match self.peek() {
                    Tok::LParen => {
                        self.next();
                        let mut args = Vec::new();
                        if !self.eat(&Tok::RParen) {
                            loop {
                                args.push(self.expr()?);
                                if self.eat(&Tok::RParen) {
                                    break;
                                }
                                self.expect(&Tok::Comma, "',' or ')' in the call")?;
                            }
                        }
                        Ok(Expr::Call(name, args, pos))
                    }
                    Tok::LBracket => Err(self.unsupported(pos, "array variables")),
                    _ => Ok(Expr::Var(name, pos)),
                }
            }
            Tok::Prime(name, _) => Err(self
                .source
                .unsupported(pos, format!("reading the derivative {name}' in an expression is not supported"))),
            _ => Err(self.err_expected("an expression")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Module {
        parse(s, &Source::new("t.mod")).unwrap()
    }
    fn perr(s: &str) -> String {
        parse(s, &Source::new("t.mod")).unwrap_err().to_string()
    }

    #[test]
    fn precedence_matches_nocmodl() {
        let m = p("INITIAL { x = -a^2*b + c > 1 && !d }");
        let Item::Initial(b, _) = &m.items[0] else { panic!() };
        let StmtKind::Assign { value, .. } = &b[0].kind else { panic!() };
        assert_eq!(value.to_string(), "(&& (> (+ (* (neg (^ a 2)) b) c) 1) (not d))");
    }

    #[test]
    fn statements_without_separators() {
        let m = p(
            "PROCEDURE r(v) { ctau = 1/sum      cinf = alpha/sum\n TABLE a, b DEPEND dt FROM -100\nTO 100 WITH 200 }",
        );
        let Item::Procedure(pr) = &m.items[0] else { panic!() };
        assert_eq!(pr.body.len(), 3);
        assert!(matches!(&pr.body[2].kind, StmtKind::Table { with: 200, .. }));
    }

    #[test]
    fn declarations_and_units() {
        let m = p("PARAMETER { cai0 = 50e-6(mM) gmax=.003 (mho/cm2) <0,1e9>\n v (mV) } UNITS { (mA) = (milliamp) F = (faraday) (coulombs) R = 8.31 (joule/degC) }");
        let Item::Parameter(d) = &m.items[0] else { panic!() };
        assert_eq!(d.len(), 3);
        assert_eq!(d[0].value, Some(50e-6));
        assert_eq!(d[1].units.as_deref(), Some("mho/cm2"));
        let Item::Units(u) = &m.items[1] else { panic!() };
        assert!(matches!(&u[1], UnitsDef::Factor { from, to, .. } if from == "faraday" && to == "coulombs"));
    }

    #[test]
    fn errors_name_position_and_construct() {
        assert_eq!(perr("BREAKPOINT {\n  x = (1 + \n}"), "syntax error: t.mod:3:1: expected an expression, found '}'");
        assert_eq!(
            perr("PROCEDURE f() {\n  WHILE (x < 1) { x = x + 1 }\n}"),
            "unsupported: t.mod:2:3: WHILE loops are not supported by miv's NMODL compiler"
        );
        assert_eq!(
            perr("LINEAR x { }"),
            "unsupported: t.mod:1:1: LINEAR blocks are not supported by miv's NMODL compiler"
        );
    }
}
