// How test processes (and the CLIs they spawn) run the TypeScript sources: Node 22.18+ and 24
// strip the types themselves, which starts a process in about half the CPU time tsx needs;
// older Nodes (20, 22.12) load tsx.
if (!process.features.typescript) await import('tsx')
