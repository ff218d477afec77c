import { readdirSync, statSync } from 'node:fs'
import { dirname, extname, join } from 'node:path'

// Code only: a .json beside a plugin is as likely a data dump or package-lock.json as an import.
const CODE = new Set(['.ts', '.mts', '.cts', '.tsx', '.js', '.mjs', '.cjs', '.jsx'])
const TEST = /\.(?:test|spec)\.[^.]+$/
/** A plugin placed in a large folder (a project's root) is not walked whole: files and folders both capped. */
export const MAX_FILES = 500
export const MAX_FOLDERS = 200

/** What a walk of a plugin's folder found, and how many folders it read (at most MAX_FOLDERS). */
export interface PluginWalk { files: string[], foldersRead: number }

/**
 * The files a loadPlugins module may have imported: itself, then the code files under its folder
 * (not node_modules, dot folders or tests). Node's module hooks run on another thread and say
 * not which files they loaded: a plugin's folder stands for its import graph (the scaffold's
 * index.ts imports ./schema.ts), so an edit to any of them is seen.
 */
export function walkPluginFolder (entry: string): PluginWalk {
  const files = [entry]
  const folders = [dirname(entry)]
  let foldersRead = 0
  // `folders` holds at most MAX_FOLDERS paths: a folder of 20,000 subfolders queues only the first ones.
  for (let folder = folders[0]; folder !== undefined && files.length < MAX_FILES; folder = folders[foldersRead]) {
    foldersRead++
    let entries
    try { entries = readdirSync(folder, { withFileTypes: true }) } catch { continue }
    for (const e of entries.sort((a, b) => a.name < b.name ? -1 : 1)) {
      if (e.name.startsWith('.') || e.name === 'node_modules') continue
      const path = join(folder, e.name)
      if (e.isDirectory()) { if (folders.length < MAX_FOLDERS) folders.push(path) } else if (e.isFile() && CODE.has(extname(e.name)) && !TEST.test(e.name) && path !== entry && files.length < MAX_FILES) files.push(path)
    }
  }
  return { files, foldersRead }
}

/** The loadPlugins module at `entry` and the files beside it it may import (walkPluginFolder). */
export const pluginFiles = (entry: string): string[] => walkPluginFolder(entry).files

/** A file's modification time and size, or undefined if it is gone. */
export type FileStamp = { mtimeMs: number, size: number } | undefined

/** How a plugin's files are compared: reading them whole would read whatever large files its folder holds. */
export function fileStamp (file: string): FileStamp {
  const s = statSync(file, { throwIfNoEntry: false })
  return s === undefined ? undefined : { mtimeMs: s.mtimeMs, size: s.size }
}

export const sameStamp = (a: FileStamp, b: FileStamp): boolean => a?.mtimeMs === b?.mtimeMs && a?.size === b?.size
