// `portcullis schema | head -c 100`: once the reader has gone, there is no one left to tell; the
// command ends quietly, as a pipeline expects, rather than with an unhandled EPIPE and its stack.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE') throw err
  process.exit(process.exitCode ?? 0)
})
