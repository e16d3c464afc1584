// Placeholder: replaced by the per-run Postgres database setup (issue 2).
export default function setup(): void {}
