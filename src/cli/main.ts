// Placeholder until the server exists (issue: MatsSocket server). Reading process.env is allowed only in src/cli.
console.error('matssocket: the server node is not implemented yet; see README.md for what is available.');
process.exitCode = 1;
