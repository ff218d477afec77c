import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from 'node:fs'
import { Type, type StringOptions } from '@sinclair/typebox'

/** The schema keyword that marks a plugin config value as a file path, resolved against the config file's folder at load. */
export const FILE_REF = 'x-portcullis-file'

/**
 * Schema of a plugin config field naming a file: a relative path is read from the config file's
 * folder, as server.tls and loadPlugins are, whatever folder the gateway was started from. The
 * plugin's check and setup get the absolute path.
 */
export const FilePath = (options: StringOptions = {}) =>
  Type.String({ minLength: 1, ...options, [FILE_REF]: true })

/** What `stats` describe when it is not a regular file ('a named pipe (FIFO)', ...); undefined for one. */
export function notRegularFile (stats: Stats): string | undefined {
  if (stats.isFile()) return undefined
  return stats.isFIFO() ? 'a named pipe (FIFO)' : stats.isDirectory() ? 'a directory' : 'a device or socket'
}

/** Throws, saying what it is, unless `stats` are a regular file's (as readConfigText does for the config file). */
export function assertRegularFile (stats: Stats): void {
  const kind = notRegularFile(stats)
  if (kind === 'a directory') throw new Error('it is a directory, not a file: name the file in it')
  if (kind !== undefined) throw new Error(`it is ${kind}, not a regular file (the gateway may read it again at any reload: write it to a file)`)
}

/**
 * The content of a file the config names (a certificate, a key, a JWKS): throws, saying why, if it
 * cannot be read or is not a regular file (symlinks followed). It is opened without waiting: the
 * open() or read() of a named pipe no one writes to would hold the thread, and with it every
 * request, probe and signal of the gateway, for ever.
 */
export function readFilePath (file: string): Buffer {
  const fd = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK)
  try {
    assertRegularFile(fstatSync(fd))
    return readFileSync(fd)
  } finally {
    closeSync(fd)
  }
}
