/** Import and backfill: readers, column mapping, and `runImport` (what `runledger import` runs). */
export { type ColumnMap, isValidTarget, mapRow, parseColumnMap, RECORD_FIELDS } from './mapping.js';
export { postgresSource, type PostgresSourceOptions } from './postgres.js';
export {
  csvSource,
  fileSource,
  formatFromName,
  type ImportFormat,
  jsonlSource,
  type RowSource,
  type SourceRow,
  valuesSource,
} from './readers.js';
export {
  checkImportOptions,
  type ChunkInfo,
  ImportFailedError,
  type ImportInput,
  type ImportProgress,
  type ImportReport,
  type InvalidRecord,
  runImport,
  type RunImportOptions,
} from './run.js';
