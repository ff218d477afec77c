/**
 * A plugin's setup failed, so the config is not loaded: it threw (the error kept as cause) or did
 * not finish within server.pluginTimeout. The message names the route and plugin, unless the
 * plugin's own message names the route already (the built-in plugins' do, with the config key).
 */
export class PluginSetupError extends Error {
  readonly code = 'PCL_ERR_PLUGIN_SETUP'
  readonly plugin: string
  readonly route: string
  constructor (plugin: string, route: string, reason: string, options?: { cause: unknown }) {
    super(reason.includes(`route "${route}"`) ? reason : `route "${route}", plugin ${plugin}: ${reason}`, options)
    this.name = 'PluginSetupError'
    this.plugin = plugin
    this.route = route
  }
}
