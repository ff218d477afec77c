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
