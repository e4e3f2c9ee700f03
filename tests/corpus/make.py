"""Writes the bad-input corpus: each file with the outcome it must get, in expected.tsv.

Run from this folder: python3 make.py. The files are committed; this script documents how each
was made (the byte-level ones cannot be written by hand in an editor).

expected.tsv columns: file, exit code of `ingest --max-bad-ratio 1` on a warehouse that holds
tests/fixtures/ingest/units_gbk.csv, and the outcome: `rows read/loaded/quarantined/duplicates`
plus `rule=n` pairs, or `error:` and a piece of the message for a refused file.
"""
import io
import zipfile

ATT_EN = "event_id,unit_id,event_type,event_date,member_id,status\n"
ATT_ZH = "活动编号,组织编码,活动类型,活动日期,党员编号,出勤状态\n"
OK1 = "E1,B1,activity_day,2026-01-10,M1,present\n"
OK2 = "E1,B1,activity_day,2026-01-10,M2,absent\n"
PTS = "entry_id,member_id,unit_id,entry_date,category,rule_code,points\n"
ASS = "unit_id,period,method,item_code,item_name,max_score,score\n"
UNITS = "unit_id,unit_name,parent_id,level,category\n"

rows = []


def put(name, data, exit_code, outcome):
    mode = "wb" if isinstance(data, bytes) else "w"
    with open(name, mode, **({} if mode == "wb" else {"encoding": "utf-8", "newline": ""})) as f:
        f.write(data)
    rows.append((name, str(exit_code), outcome))


def xlsx(sheet_xml, extra=None):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>')
        z.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
        z.writestr("xl/workbook.xml", '<?xml version="1.0"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>')
        z.writestr("xl/_rels/workbook.xml.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
        z.writestr("xl/worksheets/sheet1.xml", sheet_xml)
        for k, v in (extra or {}).items():
            z.writestr(k, v)
    return buf.getvalue()


def sheet(rows_):
    out = []
    for r, cells in enumerate(rows_, 1):
        cs = []
        for c, v in enumerate(cells):
            ref = chr(65 + c) + str(r)
            if isinstance(v, tuple):  # an error cell
                cs.append(f'<c r="{ref}" t="e"><v>{v[0]}</v></c>')
            elif isinstance(v, (int, float)):
                cs.append(f'<c r="{ref}"><v>{v}</v></c>')
            else:
                cs.append(f'<c r="{ref}" t="inlineStr"><is><t>{v}</t></is></c>')
        out.append(f'<row r="{r}">{"".join(cs)}</row>')
    return '<?xml version="1.0"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>' + "".join(out) + "</sheetData></worksheet>"


# Encodings
put("enc_gbk_declared_nothing.csv", (ATT_ZH + "E1,B1,主题党日,2026/1/10,M1,出席\n").encode("gb18030"), 0, "1/1/0/0")
put("enc_utf8_bom.csv", b"\xef\xbb\xbf" + (ATT_ZH + "E1,B1,主题党日,2026-01-10,M1,出席\n").encode(), 0, "1/1/0/0")
put("enc_utf16.csv", (ATT_EN + OK1).encode("utf-16"), 0, "1/1/0/0")
put("enc_bad_line_utf8.csv", (ATT_EN + OK1).encode() + b"E1,B1,activity_day,2026-01-10,M\xff\xfe,present\n" + OK2.encode(), 0, "3/2/1/0 encoding=1")
put("enc_bad_line_gbk.csv", (ATT_ZH + "E1,B1,主题党日,2026/1/10,M1,出席\n").encode("gb18030") + b"E1,B1,\x81 ,2026/1/10,M2,\xb3\xf6\n" + "E1,B1,主题党日,2026/1/10,M3,缺席\n".encode("gb18030"), 0, "3/2/1/0 encoding=1")
put("enc_mostly_garbage.csv", ATT_EN.encode() + b"\xff\xfe\xfd,\xff\n" * 5, 1, "error:try --encoding")
put("enc_some_garbage.csv", ATT_EN.encode() + b"\xff\xfe\xfd,\xff\n\xfa\xfb,\xfc\n\xf0\xf1\n", 0, "3/0/3/0 encoding=2 ragged=1")
put("enc_mixed_gbk_and_utf8_lines.csv", ATT_ZH.encode("gb18030") + "E1,B1,主题党日,2026/1/10,M1,出席\n".encode("gb18030") + "E1,B1,主题党日,2026/1/10,M2,出席\n".encode("utf-8") + "E1,B1,主题党日,2026/1/10,M3,出席\n".encode("gb18030"), 0, "3/2/1/0 enum=1")
# Shape
put("shape_empty.csv", b"", 1, "error:empty")
put("shape_blank_lines_only.csv", b"\n\n\r\n", 1, "error:empty")
put("shape_header_only.csv", ATT_EN, 0, "0/0/0/0")
put("shape_ragged_short.csv", ATT_EN + OK1 + "E1,B1,activity_day\n", 0, "2/1/1/0 ragged=1")
put("shape_ragged_long.csv", ATT_EN + OK1 + "E1,B1,activity_day,2026-01-10,M2,present,extra,more\n", 0, "2/1/1/0 ragged=1")
put("shape_trailing_empty_cells.csv", ATT_EN + "E1,B1,activity_day,2026-01-10,M1,present,,\n", 0, "1/1/0/0")
put("shape_unbalanced_quote.csv", ATT_EN + OK1 + 'E1,B1,"activity_day,2026-01-10,M2,present\n' + OK2.replace("M2", "M3"), 0, "2/1/1/0 ragged=1")
put("shape_quoted_newline.csv", ATT_EN + 'E1,B1,activity_day,2026-01-10,"M\n1",present\n', 0, "1/0/1/0 type=1")
put("shape_crlf.csv", (ATT_EN + OK1 + OK2).replace("\n", "\r\n"), 0, "2/2/0/0")
put("shape_huge_cell.csv", ATT_EN + "E1,B1,activity_day,2026-01-10," + "M" * 100000 + ",present\n" + OK2, 0, "2/1/1/0 range=1")
put("shape_nul_in_cell.csv", ATT_EN + "E1,B1,activity_day,2026-01-10,M\x001,present\n" + OK2, 0, "2/1/1/0 type=1")
# Headers
put("head_unknown.csv", "foo,bar\n1,2\n", 1, "error:does not match any record kind")
put("head_duplicate.csv", "event_id,活动编号,unit_id,event_type,event_date,member_id,status\nE1,E1,B1,activity_day,2026-01-10,M1,present\n", 1, "error:both mean `event_id`")
put("head_missing_required.csv", "event_id,unit_id,event_type,event_date,status\nE1,B1,activity_day,2026-01-10,present\n", 1, "error:")
put("head_extra_columns.csv", "event_id,unit_id,event_type,event_date,member_id,status,remark\nE1,B1,activity_day,2026-01-10,M1,present,ok\n", 0, "1/1/0/0")
put("head_spaces_and_case.csv", " Event ID , Unit-ID ,EVENT_TYPE,event date,member_id,status\n" + OK1, 0, "1/1/0/0")
# Values
put("val_excel_errors.csv", ATT_EN + "E1,B1,activity_day,#DIV/0!,M1,present\nE1,#REF!,activity_day,2026-01-10,M2,present\n" + OK1.replace("M1", "M3"), 0, "3/1/2/0 excel_error=2")
put("val_dates_out_of_range.csv", ATT_EN + "E1,B1,activity_day,1899-12-31,M1,present\nE1,B1,activity_day,2100-01-01,M2,present\nE1,B1,activity_day,99999,M3,present\n" + OK1.replace("M1", "M4"), 0, "4/1/3/0 range=2 type=1")
put("val_impossible_dates.csv", ATT_EN + "E1,B1,activity_day,2026-02-29,M1,present\nE1,B1,activity_day,2026/13/1,M2,present\nE1,B1,activity_day,2024-02-29,M3,present\n", 0, "3/1/2/0 type=2")
put("val_bad_enums.csv", ATT_EN + "E1,B1,picnic,2026-01-10,M1,present\nE1,B1,activity_day,2026-01-10,M2,maybe\n", 0, "2/0/2/0 enum=2")
put("val_unknown_unit.csv", ATT_EN + "E1,B99,activity_day,2026-01-10,M1,present\n" + OK2, 0, "2/1/1/0 reference=1")
put("val_required_blank.csv", ATT_EN + ",B1,activity_day,2026-01-10,M1,present\nE1,B1,activity_day,2026-01-10,   ,present\n", 0, "2/0/2/0 required=2")
put("val_points_numbers.csv", PTS + "P1,M1,B1,2026-01-05,base,B01,abc\nP2,M1,B1,2026-01-05,base,B01,1e400\nP3,M1,B1,2026-01-05,base,B01,NaN\nP4,M1,B1,2026-01-05,base,B01,２\n", 0, "4/1/3/0 type=3")
put("val_points_signs.csv", PTS + "P1,M1,B1,2026-01-05,deduction,D01,3\nP2,M1,B1,2026-01-05,reward,R01,-3\nP3,M1,B1,2026-01-05,deduction,D01,-3\n", 0, "3/1/2/0 range=2")
put("val_scores.csv", ASS + "B1,2026Q1,regular,A1,x,-5,0\nB1,2026Q1,regular,A2,x,,3\nB1,2026Q1,regular,A3,x,10,-1\nB1,2026Q1,regular,A4,x,10,10\nB1,2026Q5,regular,A5,x,10,5\n", 0, "5/1/4/0 range=2 required=1 type=1")
put("val_formula_text.csv", ATT_EN + "=HYPERLINK(\"http://x\"),B1,activity_day,2026-01-10,M1,present\n", 0, "1/1/0/0")
# Keys
put("key_same_twice_different.csv", ATT_EN + OK1 + OK1.replace("present", "absent"), 0, "2/0/2/0 key_conflict=2")
put("key_same_twice_identical.csv", ATT_EN + OK1 + OK1, 0, "2/1/0/1")
put("key_three_times_mixed.csv", ATT_EN + OK1 + OK1.replace("present", "absent") + OK1, 0, "3/0/3/0 key_conflict=3")
# Units trees (the warehouse already has root D and B1-B3)
put("tree_second_root.csv", UNITS + "R2,另一个区,,district,\n", 0, "1/0/1/0 tree=1")
put("tree_cycle.csv", UNITS + "X1,甲,X2,community,rural\nX2,乙,X1,community,rural\n", 0, "2/0/2/0 tree=2")
put("tree_unknown_parent.csv", UNITS + "X1,甲,NOPE,community,rural\nX2,乙,X1,branch,rural\n", 0, "2/0/2/0 reference=2")
put("tree_self_parent.csv", UNITS + "X1,甲,X1,community,rural\n", 0, "1/0/1/0 tree=1")
put("tree_slash_in_id.csv", UNITS + "X/1,甲,C1,branch,community\n", 0, "1/0/1/0 type=1")
put("tree_no_category.csv", UNITS + "X1,甲,C1,branch,\n", 0, "1/0/1/0 required=1")
# Workbooks
put("xlsx_truncated.xlsx", xlsx(sheet([["event_id"]]))[:200], 1, "error:")
put("xlsx_not_a_zip.xlsx", b"event_id,unit_id\nnot really a workbook\n", 1, "error:not an XLSX file")
put("xlsx_error_cells.xlsx", xlsx(sheet([["event_id", "unit_id", "event_type", "event_date", "member_id", "status"], ["E1", "B1", "activity_day", 46032, "M1", "present"], ["E1", "B1", "activity_day", ("#DIV/0!",), "M2", "present"]])), 0, "2/1/1/0 excel_error=1")
put("xlsx_declared_huge.xlsx", xlsx(sheet([["event_id"]]), {"xl/padding.bin": b"\0" * (600 * 1024 * 1024)}), 1, "error:over the limit")

with open("expected.tsv", "w", encoding="utf-8") as f:
    f.write("file\texit\toutcome\n")
    for r in rows:
        f.write("\t".join(r) + "\n")
print(len(rows), "files")
