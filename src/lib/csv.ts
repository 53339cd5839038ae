// CSV as RFC 4180 writes it (https://www.rfc-editor.org/rfc/rfc4180): fields with a comma, a quote
// or a line break are quoted, quotes doubled, lines end in CRLF. A text cell that a spreadsheet
// would run as a formula (=, +, -, @, a tab or CR first) gets a leading apostrophe, as OWASP's
// advice on CSV injection has it (https://owasp.org/www-community/attacks/CSV_Injection): an export
// holds names users chose (an API key's), and the operator opens it in a spreadsheet.

export type CsvCell = string | number | boolean | null | undefined;

function cell(value: CsvCell): string {
  if (value === null || value === undefined) return '';
  if (typeof value !== 'string') return String(value);
  const text = /^[=+\-@\t\r]/.test(value) ? `'${value}` : value;
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/** One CSV line, with its CRLF. */
export function csvLine(cells: readonly CsvCell[]): string {
  return `${cells.map(cell).join(',')}\r\n`;
}
