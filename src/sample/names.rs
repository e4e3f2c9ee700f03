//! Names for the sample district: units, people (made up from common surnames and given-name
//! characters; no real person), assessment items.

pub const DISTRICT: &str = "示范区";

const STREETS: [&str; 10] = [
    "东城街道",
    "西城街道",
    "南湖街道",
    "北苑街道",
    "新华街道",
    "和平街道",
    "解放街道",
    "人民街道",
    "朝阳街道",
    "滨江街道",
];
const TOWNS: [&str; 8] = ["青山镇", "柳河镇", "石桥镇", "杏花镇", "白沙镇", "龙泉镇", "桃源镇", "金沙镇"];
const COMMUNITIES: [&str; 12] =
    ["幸福", "和谐", "阳光", "翠竹", "金桥", "长青", "锦绣", "春晖", "育才", "明珠", "碧水", "康乐"];
const VILLAGES: [&str; 10] = ["王家", "李庄", "桃园", "河东", "石门", "新民", "马坊", "杨柳", "高家", "前进"];
const ORGANS: [&str; 8] = [
    "区教育局党委",
    "区卫健局党委",
    "区财政局党组",
    "区民政局党组",
    "区住建局党委",
    "区人社局党组",
    "区交通局党委",
    "区文旅局党组",
];
const NONPUBLIC: [&str; 8] = [
    "华兴科技公司党委",
    "新城物流集团党委",
    "区律师行业党委",
    "康泰医药公司党委",
    "恒达建设集团党委",
    "区个私协会党委",
    "星光商贸公司党委",
    "区社会组织联合党委",
];

/// A township-level name for a category; the list cycles with a number when it runs out.
pub fn township(category: &str, i: usize) -> String {
    let pick = |list: &[&str], i: usize| {
        let round = i / list.len();
        if round == 0 { list[i].to_string() } else { format!("{}{}", list[i % list.len()], round + 1) }
    };
    match category {
        "community" => pick(&STREETS, i),
        "rural" => pick(&TOWNS, i),
        "organ" => "区直机关工委".to_string(),
        _ => "非公企业和社会组织综合党委".to_string(),
    }
}

/// A community-level name (村/社区, or an organ's or enterprise's committee).
pub fn community(category: &str, i: usize, township: &str) -> String {
    let cycle = |list: &[&str]| {
        let round = i / list.len();
        let base = list[i % list.len()];
        if round == 0 { base.to_string() } else { format!("{base}{}", round + 1) }
    };
    match category {
        "community" => format!("{}{}社区", township.trim_end_matches("街道"), cycle(&COMMUNITIES)),
        "rural" => format!("{}村", cycle(&VILLAGES)),
        "organ" => cycle(&ORGANS),
        _ => cycle(&NONPUBLIC),
    }
}

const NUMERALS: [&str; 10] = ["一", "二", "三", "四", "五", "六", "七", "八", "九", "十"];

/// `第一党支部`, `第二党支部`, …
pub fn branch_suffix(n: usize) -> String {
    match NUMERALS.get(n.wrapping_sub(1)) {
        Some(x) => format!("第{x}党支部"),
        None => format!("第{n}党支部"),
    }
}

const SURNAMES: [&str; 20] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭", "何", "林", "罗",
    "高",
];
const GIVEN: [&str; 24] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "秀英", "华",
    "建国", "桂英", "志强", "红梅", "海燕",
];

/// A made-up person's name for member `i` (stable for a given i).
pub fn person(i: usize) -> String {
    let a = SURNAMES[i % SURNAMES.len()];
    let b = GIVEN[(i / SURNAMES.len() + i * 7) % GIVEN.len()];
    format!("{a}{b}")
}

/// Assessment items (code, name), each with a maximum of 20.
pub const ITEMS: [(&str, &str); 5] =
    [("A01", "组织建设"), ("A02", "制度落实"), ("A03", "作用发挥"), ("A04", "党员管理"), ("A05", "基础保障")];

pub const POINTS_HEADER_ZH: [&str; 9] =
    ["流水号", "党员编号", "组织编码", "日期", "积分类别", "积分项目", "分值", "审核状态", "姓名"];
pub const POINTS_HEADER_EN: [&str; 9] =
    ["entry_id", "member_id", "unit_id", "entry_date", "category", "rule_code", "points", "approved", "member_name"];
