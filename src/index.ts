// The public API: what a plugin author or an embedding program imports from "portcullis".
export { definePlugin } from './plugins/define-plugin.ts'
export type {
  GatewayRequest, GatewayResponse, HeaderMap, PluginDefinition, PluginHandlers, PluginReply, PluginSetupContext
} from './plugins/contract.ts'
export { loadConfig, parseConfig, type LoadedConfig } from './config/load.ts'
export { ConfigError, type ConfigIssue } from './config/config-error.ts'
export { startPortcullis, type Portcullis } from './server/start.ts'
export { createLogger } from './logging/logger.ts'
export { Type } from '@sinclair/typebox'
