//! `esignsp-pgbench-script`: prints a pgbench script of the statements the service sends to
//! PostgreSQL for one `PUT …/signer_processes/{id}/result` on a pending process without
//! documents (`esignsp_adapters::postgres::sql`: the domain's load and compare-and-set write), so that
//! `scripts/bench.sh` compares the service with PostgreSQL running exactly that SQL.
//!
//! Each transaction takes a pending process of its own, as the load generator does: client
//! `:client_id` of `:clients` takes `n = :lo + :client_id + :clients * i` in its `i`-th
//! transaction (pass `-D lo=… -D clients=… -D i=0`); the id is the bulk load's
//! `substr(md5(n) || md5(n || 'x'), 1, 32)`. The version read by the first statement is kept
//! with `\gset` and compared by the second, as the service does.

use esignsp_adapters::postgres::sql;

/// The process id of bulk-loaded process `:n` (`scripts/bench.sh`).
const ID: &str = "substr(md5(:n::text) || md5(:n::text || 'x'), 1, 32)";

/// Replaces each `$N` of `statement` by `values[N - 1]`.
///
/// # Panics
/// When `statement` names a parameter that `values` does not give: the service's statement
/// changed and this script must follow it.
fn bind(statement: &str, values: &[&str]) -> String {
    let mut out = String::with_capacity(statement.len() * 2);
    let mut rest = statement;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let digits = rest[at + 1..].bytes().take_while(u8::is_ascii_digit).count();
        let index: usize = rest[at + 1..at + 1 + digits].parse().unwrap_or_else(|_| panic!("bare $ in {statement}"));
        let value = index
            .checked_sub(1)
            .and_then(|i| values.get(i))
            .unwrap_or_else(|| panic!("no value for ${index} in {statement}"));
        out.push('(');
        out.push_str(value);
        out.push(')');
        rest = &rest[at + 1 + digits..];
    }
    out.push_str(rest);
    out
}

fn main() {
    let read = bind(sql::LOAD, &[ID, "'bench'", "false"]);
    let write = bind(
        sql::WRITE,
        &[
            ID,
            "'finished'",
            "'bench'",
            "'{}'",
            "'{}'",
            "'{}'",
            "'bench'",
            "'pgbench'",
            "'result'",
            ":version",
            "NULL",
            "'finished'",
            // The webhook notification, as the service writes it (no endpoint subscribes in the
            // benchmark, so the outbox CTE inserts nothing, as in the service's run).
            "'bench0000000000000000000000000msg'",
            "'signer_process.result'",
            "'{\"type\":\"signer_process.result\"}'",
            "4",
        ],
    );
    println!("\\set n :lo + :client_id + :clients * :i\n\\set i :i + 1\n{read} \\gset\n{write};");
}
