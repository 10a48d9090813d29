// Chinese by default (the words of the forms and reports), English switchable.
import { ref } from 'vue'

export const lang = ref(localStorage.getItem('shouhu.lang') || 'zh')

export function setLang(value) {
  lang.value = value
  localStorage.setItem('shouhu.lang', value)
  document.documentElement.lang = value === 'zh' ? 'zh-CN' : 'en'
}

const WORDS = {
  app: ['守护 · 关爱走访', 'Shouhu field app'],
  signIn: ['登录', 'Sign in'],
  signOut: ['退出', 'Sign out'],
  tokenLabel: ['访问令牌', 'Access token'],
  tokenHelp: ['粘贴管理员发给您的令牌', 'Paste the token you were given'],
  tokenBad: ['令牌无法识别或已过期', 'The token is unreadable or expired'],
  offline: ['无网络：显示的是上次保存的内容', 'Offline: showing what was last saved'],
  queued: ['待上传', 'Waiting to send'],
  sent: ['已上传', 'Sent'],
  failed: ['上传失败', 'Not accepted'],
  retry: ['重新上传', 'Send again'],
  discard: ['删除', 'Discard'],
  loading: ['加载中…', 'Loading…'],
  save: ['保存', 'Save'],
  cancel: ['取消', 'Cancel'],
  back: ['返回', 'Back'],
  noHelper: ['没有找到您的帮扶人登记，请联系村督导员', 'No helper is registered for your account; ask the village supervisor'],
  myChildren: ['我的结对儿童', 'My children'],
  worklist: ['本周待走访与逾期', 'Due this week and overdue'],
  nothingDue: ['本周没有待办', 'Nothing due this week'],
  overdue: ['逾期', 'overdue'],
  due: ['待完成', 'due'],
  done: ['已完成', 'done'],
  until: ['截止', 'until'],
  recordVisit: ['记录走访', 'Record a visit'],
  recordTalk: ['记录谈心', 'Record a talk'],
  kind: ['走访方式', 'Kind'],
  visitedOn: ['日期', 'Date'],
  observations: ['观察', 'Observations'],
  note: ['备注', 'Note'],
  concern: ['发现问题（可选）', 'A concern (optional)'],
  severity: ['严重程度', 'Severity'],
  none: ['无', 'none'],
  savedOffline: ['已保存，有网络时自动上传', 'Saved; it is sent when the signal returns'],
  myClass: ['本班留守学生', 'My class\'s left-behind pupils'],
  absence: ['报告缺课', 'Report an absence'],
  schoolReturn: ['返校', 'Back at school'],
  fromDate: ['开始日期', 'From'],
  toDate: ['结束日期', 'To'],
  schoolDays: ['缺课天数', 'School days missed'],
  excused: ['已请假', 'Excused'],
  returnedOn: ['返校日期', 'Returned on'],
  needsSignal: ['此操作需要网络', 'This needs a signal'],
  villageChildren: ['本村儿童', 'The village\'s children'],
  register: ['登记儿童', 'Register a child'],
  name: ['姓名', 'Name'],
  gender: ['性别', 'Gender'],
  female: ['女', 'female'],
  male: ['男', 'male'],
  birthDate: ['出生日期', 'Birth date'],
  villageCode: ['村（社区）代码', 'Village code'],
  leftBehindType: ['留守类型', 'Left-behind type'],
  guardian: ['监护人', 'Guardian'],
  relationship: ['关系', 'Relationship'],
  archive: ['更新档案', 'Update the archive'],
  guardianChange: ['更换监护人', 'Guardian change'],
  agreementSigned: ['签订委托监护协议', 'Agreement signed'],
  signedOn: ['签订日期', 'Signed on'],
  validUntil: ['有效期至', 'Valid until'],
  parentsReturned: ['父母返乡', 'Parents returned'],
  parentsReturnedHelp: ['父母双方在家：档案将结档（不再是留守儿童）', 'Both parents at home: the archive closes (no longer left behind)'],
  conflict: ['档案已被他人修改', 'The archive changed meanwhile'],
  conflictHelp: ['请核对后选择：以您的修改为准，或放弃', 'Compare, then keep your change or drop it'],
  yours: ['您的修改', 'Your change'],
  current: ['现在的档案', 'The archive now'],
  keepMine: ['以我的为准', 'Keep mine'],
  dropMine: ['放弃我的修改', 'Drop mine'],
  saved: ['已保存', 'Saved'],
  villageOverdue: ['本村逾期走访', 'The village\'s overdue visits'],
  noOverdue: ['没有逾期', 'Nothing overdue'],
  daysQuiet: ['天未走访', 'days without contact'],
  never: ['从未走访', 'never visited'],
  overview: ['乡镇总览', 'Township overview'],
  children: ['儿童', 'children'],
  rule: ['规则', 'Rule'],
  quiet: ['30天以上未走访', 'no contact for 30+ days'],
  version: ['版本', 'version'],
  openReferrals: ['本村未结转介案件', 'The village\'s open referrals'],
  myCases: ['本班学生劝返案件', 'My pupils\' 劝返 cases'],
  noReferrals: ['没有未结案件', 'No open cases'],
  refusals: ['拒绝次数', 'refusals'],
  recordPersuasion: ['记录劝返走访', 'Record a persuasion visit'],
  persuasion_visit: ['劝返走访', 'persuasion visit'],
  outcome: ['劝返结果', 'Outcome'],
  cause: ['辍学原因', 'Cause'],
  guardianView: ['监护人意见', 'The guardian\'s view'],
  archiveRate: ['建档率', 'archive rate'],
  agreementsInForce: ['委托监护协议', 'agreements in force'],
  unguardedNow: ['无人监护', 'no guardian'],
  visitCompliance: ['走访覆盖率', 'visit coverage'],
  missedWindows: ['逾期走访', 'missed visits'],
  concernsRaised: ['发现问题', 'concerns raised'],
  stillOut: ['失学辍学', 'out of school'],
  places: ['各村（社区）', 'Villages'],
}

const OPTIONS = {
  home_visit: ['家访', 'home visit'], talk: ['谈心', 'talk'], phone: ['电话', 'phone'], letter: ['书信', 'letter'],
  study: ['学习', 'study'], life: ['生活', 'life'], psychology: ['心理', 'psychology'], safety: ['安全', 'safety'],
  health: ['健康', 'health'],
  good: ['良好', 'good'], fair: ['一般', 'fair'], attention: ['需关注', 'attention'], serious: ['严重', 'serious'],
  unexcused_absence: ['无故旷课', 'unexcused absence'], no_adult_at_home: ['家中无成人照看', 'no adult at home'],
  injury: ['受伤', 'injury'], violence_signs: ['疑似遭受暴力', 'signs of violence'],
  psychological_distress: ['心理困扰', 'psychological distress'], hardship: ['生活困难', 'hardship'], other: ['其他', 'other'],
  low: ['一般', 'low'], medium: ['较重', 'medium'], high: ['严重', 'high'], urgent: ['紧急', 'urgent'],
  grandparent: ['祖父母', 'grandparent'], parent: ['父/母', 'parent'], relative: ['亲戚', 'relative'], sibling: ['兄姐', 'sibling'],
  both_parents_out: ['父母双方外出', 'both parents out'],
  one_out_other_incapable: ['一方外出另一方无监护能力', 'one out, the other incapable'],
  'guardian.name': ['监护人', 'Guardian'], 'guardian.relationship': ['监护人关系', 'Guardian\'s relationship'],
  'guardian.phone': ['监护人电话', 'Guardian\'s phone'], 'father.status': ['父亲', 'Father'], 'mother.status': ['母亲', 'Mother'],
  archive_status: ['档案状态', 'Archive'],
  migrant_worker: ['外出务工', 'working away'], at_home: ['在家', 'at home'], incapable: ['无监护能力', 'incapable'],
  deceased: ['去世', 'deceased'], unknown: ['不详', 'unknown'], open: ['在档', 'open'], closed: ['已结档', 'closed'],
  'policy.dropout': ['劝返复学', 'dropout'], 'policy.unguarded': ['无人监护', 'no guardian'],
  'policy.no_hukou': ['无户籍', 'no household registration'], 'policy.hardship': ['生活困难', 'hardship'],
  'policy.medical': ['医疗救助', 'medical'], 'policy.violence': ['暴力侵害', 'violence'],
  'policy.psychological': ['心理疏导', 'psychological'],
  'stage.persuasion': ['学校劝返', 'persuasion'], 'stage.reported': ['已书面报告', 'reported'],
  'stage.acknowledged': ['已受理', 'acknowledged'], 'stage.closed': ['已结案', 'closed'],
  'persuasion.refused': ['拒绝返校', 'refused'], 'persuasion.unreachable': ['联系不上', 'unreachable'],
  'persuasion.returned': ['已返校', 'returned'],
  'cause.study_difficulty': ['学习困难', 'study difficulty'], 'cause.family_hardship': ['家庭困难', 'family hardship'],
  'cause.work': ['外出打工', 'work'], 'cause.illness': ['疾病', 'illness'], 'cause.other': ['其他', 'other'],
}

export function t(key) {
  const pair = WORDS[key] || OPTIONS[key]
  if (!pair) return key
  return lang.value === 'zh' ? pair[0] : pair[1]
}

// An API error in the user's language, with the fields it names.
export function errorText(err) {
  const body = err?.body?.detail ?? err?.body
  if (!body || typeof body !== 'object') return String(err?.message || err)
  const head = lang.value === 'zh' ? body.message_zh : body.message_en
  const parts = (body.errors || []).map((e) => `${e.field}: ${lang.value === 'zh' ? e.message_zh : e.message_en}`)
  return [head, ...parts].filter(Boolean).join('；')
}
