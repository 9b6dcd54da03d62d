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
//!
//! `--batch B` prints instead the group commit's statements for B processes a transaction
//! (`sql::LOAD_BATCH`, its versions kept with `\gset`, then `sql::WRITE_BATCH`): client
//! `:client_id` takes `n … n + B - 1` with `n = :lo + (:client_id + :clients * i) * B`.

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

/// The script of one PUT a transaction.
fn single() -> String {
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
    format!("\\set n :lo + :client_id + :clients * :i\n\\set i :i + 1\n{read} \\gset\n{write};")
}

/// The script of one group commit batch of `batch` PUTs a transaction.
fn batched(batch: usize) -> String {
    let ids =
        "ARRAY(SELECT substr(md5(g::text) || md5(g::text || 'x'), 1, 32) FROM generate_series(CAST(:n AS int), CAST(:last AS int)) AS g)";
    let fill = |value: &str, ty: &str| format!("array_fill(CAST({value} AS {ty}), ARRAY[CAST(:b AS int)])");
    let read = bind(sql::LOAD_BATCH, &[ids, &fill("'bench'", "text"), &fill("false", "bool")]);
    let read = format!("SELECT array_agg(version ORDER BY request) AS versions FROM ({read}) AS loaded");
    let write = bind(
        sql::WRITE_BATCH,
        &[
            ids,
            &fill("'finished'", "text"),
            &fill("'bench'", "text"),
            "CAST(:versions AS bigint[])",
            &fill("'bench'", "text"),
            &fill("'pgbench'", "text"),
            &fill("'result'", "text"),
            &fill("NULL", "text"),
            &fill("'finished'", "text"),
            // The notifications, as the service writes them (no endpoint subscribes).
            &fill("'bench0000000000000000000000000msg'", "text"),
            &fill("'signer_process.result'", "text"),
            &fill("'{\"type\":\"signer_process.result\"}'", "text"),
            &fill("4", "bigint"),
            "'{}'",
            "'{}'",
            "'{}'",
            "'{}'",
        ],
    );
    format!("\\set b {batch}\n\\set n :lo + (:client_id + :clients * :i) * :b\n\\set last :n + :b - 1\n\\set i :i + 1\n{read} \\gset\n{write};")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let script = match args.iter().position(|a| a == "--batch").and_then(|i| args.get(i + 1)) {
        Some(b) => batched(b.parse().expect("--batch takes a number of PUTs")),
        None => single(),
    };
    println!("{script}");
}
