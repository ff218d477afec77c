// `node --import <this file>`: plugin files (and their tests) outside the package can import
// "portcullis", and .ts files load, as they do when the gateway loads them.
import { registerPluginHooks } from './plugin-loader.ts'

registerPluginHooks()
