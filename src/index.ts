// The public API: what a plugin author or an embedding program imports from "portcullis".
export { definePlugin } from './plugins/define-plugin.ts'
export { RequestRejected } from './plugins/request-rejected.ts'
export type {
  ClientCertificate, CredentialSpec, GatewayRequest, GatewayResponse, HeaderMap, PluginDefinition, PluginHandlers, PluginReply, PluginSetupContext, SubrequestResponse, UpstreamTarget
} from './plugins/contract.ts'
export type { AdminMethod, PluginAdmin, PluginAdminHandler, PluginAdminReply, PluginAdminRequest } from './plugins/admin-routes.ts'
export type { Consumer, ConsumerCredential, Consumers } from './consumers/consumers.ts'
export type { TraceContext } from './proxy/trace-context.ts'
export type { HistogramOptions, MetricOptions, PluginMetrics } from './metrics/plugin-metrics.ts'
export { defineScript, hashTag, type LocalData, type SetOptions, type Store, type StoreScript, type StoreValue } from './stores/store.ts'
export { StoreName } from './stores/store-name.ts'
export { Duration, toMs } from './config/duration.ts'
export { NonEmptyKey, TOKEN } from './config/names.ts'
export { loadConfig, parseConfig, type LoadedConfig } from './config/load.ts'
export { ConfigError, type ConfigIssue } from './config/config-error.ts'
export { startPortcullis, type Portcullis } from './server/start.ts'
export { createLogger } from './logging/logger.ts'
export { Type, type Static } from '@sinclair/typebox'
