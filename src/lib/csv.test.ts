import { describe, expect, it } from 'vitest';
import { csvLine } from './csv.js';

describe('csvLine', () => {
  it('writes plain cells as they are, numbers and empty cells included', () => {
    expect(csvLine(['gpt-4o-mini', 12, -3, null, undefined, true, ''])).toBe('gpt-4o-mini,12,-3,,,true,\r\n');
  });

  it('quotes a cell with a comma, a quote or a line break, doubling its quotes', () => {
    expect(csvLine(['a,b', 'say "hi"', 'two\nlines', 'cr\r'])).toBe('"a,b","say ""hi""","two\nlines","cr\r"\r\n');
  });

  it('keeps a spreadsheet from running a text cell as a formula', () => {
    expect(csvLine(['=HYPERLINK("http://x")', '+1', '-2', '@SUM(A1)', '\tx', 'ok=1'])).toBe(`"'=HYPERLINK(""http://x"")",'+1,'-2,'@SUM(A1),'\tx,ok=1\r\n`);
  });

  it('reads back as the cells with a CSV reader that follows RFC 4180', () => {
    const cells = ['plain', 'a,b', 'q"uote', 'multi\r\nline', 'end'];
    const line = csvLine(cells);
    // A minimal reader: quoted fields may hold anything; "" is a quote.
    const out: string[] = [];
    let i = 0;
    while (i < line.length - 2) {
      if (line[i] === '"') {
        let v = '';
        i++;
        for (;;) {
          if (line[i] === '"' && line[i + 1] === '"') (v += '"'), (i += 2);
          else if (line[i] === '"') break;
          else v += line[i++];
        }
        out.push(v);
        i += 2;
      } else {
        const end = line.indexOf(',', i) === -1 ? line.length - 2 : Math.min(line.indexOf(',', i), line.length - 2);
        out.push(line.slice(i, end));
        i = end + 1;
      }
    }
    expect(out).toEqual(cells);
  });
});
