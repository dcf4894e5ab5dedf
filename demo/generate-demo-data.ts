// Writes Gleaner's offline demo data: demo/organisations.csv (the rows to enrich), demo/corpus/
// (the small fictional web the demo searches and crawls), demo/truth.json (the true value of
// every output column and the pages that hold it) and demo/README.md. Deterministic: a seeded
// PRNG, no clock, no network, node's own modules only.
//
//   node --import tsx demo/generate-demo-data.ts
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const SEED = 0x61ea4e5;
const ORGANISATION_COUNT = 300;
const DEMO_DIR = dirname(fileURLToPath(import.meta.url));
const CORPUS_DIR = join(DEMO_DIR, "corpus");
const DIRECTORY_ROWS_PER_PAGE = 14;

// ---------------------------------------------------------------------------------------------
// PRNG (mulberry32)

class Rng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error("pick from an empty list");
    return items[Math.floor(this.next() * items.length)]!;
  }
  shuffle<T>(items: readonly T[]): T[] {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  }
}

const rng = new Rng(SEED);

// ---------------------------------------------------------------------------------------------
// Vocabulary

interface Industry {
  /** The truth value; its lower-case form is written in every page that names the industry. */
  label: string;
  slug: string;
  /** Noun phrases naming the industry: each contains the label in lower case. */
  nouns: string[];
  /** Base-form verb phrases: "run refrigerated trucking routes". */
  activities: string[];
  services: string[];
  roles: string[];
  nameWords: string[];
  /** News items of the org itself: no place names, no numbers. */
  news: string[];
}

const INDUSTRIES: Industry[] = [
  {
    label: "Logistics",
    slug: "logistics",
    nouns: [
      "a logistics company",
      "an independent logistics provider",
      "a family-run logistics firm",
    ],
    activities: [
      "move containers between ports and inland depots",
      "run refrigerated trucking routes for fresh produce",
      "handle warehousing and last-mile delivery for online shops",
      "plan and carry oversized freight for heavy industry",
    ],
    services: [
      "Full and part loads",
      "Cross-docking",
      "Cold-chain transport",
      "Customs paperwork",
      "Pallet storage",
      "Same-day courier runs",
    ],
    roles: [
      "Transport planner",
      "HGV driver",
      "Warehouse team lead",
      "Customer operations coordinator",
    ],
    nameWords: ["Freight", "Shipping", "Haulage", "Cargo", "Transport", "Couriers", "Forwarding"],
    news: [
      "We added a fleet of electric delivery vans.",
      "Our new route-planning system went live.",
      "We renewed our partnership with a regional rail operator.",
    ],
  },
  {
    label: "Software",
    slug: "software",
    nouns: ["a software company", "an independent software house", "a small software studio"],
    activities: [
      "build scheduling tools for clinics and workshops",
      "write the booking systems behind regional ferry lines",
      "develop open-source tooling for data pipelines",
      "make inventory apps for independent shops",
    ],
    services: [
      "Custom development",
      "Hosted platforms",
      "Integration work",
      "Support contracts",
      "Code audits",
      "Training",
    ],
    roles: [
      "Backend engineer",
      "Product designer",
      "Site reliability engineer",
      "Technical writer",
    ],
    nameWords: ["Systems", "Labs", "Digital", "Data", "Code Works", "Logic"],
    news: [
      "Version two of our scheduling platform shipped this spring.",
      "We published our accessibility statement.",
      "Our team ran its first internal hack week.",
    ],
  },
  {
    label: "Renewable energy",
    slug: "renewable-energy",
    nouns: [
      "a renewable energy developer",
      "a renewable energy company",
      "an independent renewable energy producer",
    ],
    activities: [
      "develop community solar parks",
      "install and maintain small wind turbines on farms",
      "run run-of-river hydro schemes",
      "design battery storage for rooftop solar",
    ],
    services: [
      "Site assessment",
      "Grid connection",
      "Turbine maintenance",
      "Solar installation",
      "Energy monitoring",
      "Battery retrofits",
    ],
    roles: ["Electrical engineer", "Field technician", "Project developer", "Grid analyst"],
    nameWords: ["Solar", "Wind", "Energy", "Power", "Renewables", "Hydro"],
    news: [
      "Our latest solar park was connected to the grid.",
      "We started an apprenticeship scheme for turbine technicians.",
      "Landowners can now apply for our community share offer.",
    ],
  },
  {
    label: "Food and beverage",
    slug: "food-and-beverage",
    nouns: [
      "a food and beverage producer",
      "an independent food and beverage business",
      "a food and beverage company",
    ],
    activities: [
      "roast speciality coffee for cafés and restaurants",
      "bake sourdough bread and pastries for local shops",
      "brew small-batch beers and ciders",
      "make cheeses and yoghurts from regional milk",
    ],
    services: [
      "Wholesale supply",
      "Private label",
      "Tasting events",
      "Seasonal boxes",
      "Catering orders",
      "Factory shop",
    ],
    roles: ["Production operative", "Quality technician", "Delivery driver", "Head baker"],
    nameWords: ["Foods", "Bakehouse", "Brewing", "Roasters", "Dairy", "Provisions", "Kitchens"],
    news: [
      "Our winter range is now in stores.",
      "We switched to compostable packaging.",
      "The factory shop has new opening hours.",
    ],
  },
  {
    label: "Financial services",
    slug: "financial-services",
    nouns: [
      "a financial services provider",
      "an independent financial services firm",
      "a member-owned financial services group",
    ],
    activities: [
      "offer savings accounts and small-business loans",
      "manage pension funds for cooperatives",
      "insure fishing boats and harbour businesses",
      "provide payroll and invoice financing",
    ],
    services: [
      "Business loans",
      "Savings accounts",
      "Asset management",
      "Insurance",
      "Invoice finance",
      "Financial planning",
    ],
    roles: ["Credit analyst", "Relationship manager", "Compliance officer", "Actuarial assistant"],
    nameWords: ["Capital", "Mutual", "Finance", "Assurance", "Savings", "Credit"],
    news: [
      "We launched a green mortgage product.",
      "Our annual member meeting took place in June.",
      "A new online banking app is available.",
    ],
  },
  {
    label: "Healthcare",
    slug: "healthcare",
    nouns: [
      "a healthcare provider",
      "an independent healthcare group",
      "a community healthcare organisation",
    ],
    activities: [
      "run physiotherapy and sports injury clinics",
      "provide home nursing for older patients",
      "operate dental practices",
      "run diagnostic imaging centres",
    ],
    services: [
      "Physiotherapy",
      "Home visits",
      "Diagnostics",
      "Dental care",
      "Occupational health",
      "Rehabilitation",
    ],
    roles: ["Registered nurse", "Physiotherapist", "Clinic receptionist", "Radiographer"],
    nameWords: ["Health", "Clinics", "Medical", "Care", "Wellbeing"],
    news: [
      "Evening appointments are now available.",
      "We introduced online booking for all clinics.",
      "Our patient survey results are published.",
    ],
  },
  {
    label: "Manufacturing",
    slug: "manufacturing",
    nouns: [
      "a manufacturing company",
      "a precision manufacturing business",
      "a family-owned manufacturing firm",
    ],
    activities: [
      "machine precision parts for pumps and valves",
      "make furniture from certified hardwood",
      "press and weld steel components",
      "produce injection-moulded housings",
    ],
    services: [
      "CNC machining",
      "Sheet metal work",
      "Assembly",
      "Prototyping",
      "Surface finishing",
      "Batch production",
    ],
    roles: ["CNC machinist", "Production engineer", "Quality inspector", "Maintenance fitter"],
    nameWords: ["Industries", "Metalworks", "Components", "Fabrication", "Tooling", "Works"],
    news: [
      "A second five-axis machine joined the workshop.",
      "We achieved a new quality certification.",
      "Our open day welcomed local schools.",
    ],
  },
  {
    label: "Construction",
    slug: "construction",
    nouns: [
      "a construction company",
      "an independent construction firm",
      "a general construction contractor",
    ],
    activities: [
      "build timber-framed homes",
      "restore listed buildings",
      "carry out civil works for bridges and roads",
      "fit out schools and offices",
    ],
    services: [
      "New builds",
      "Restoration",
      "Civil engineering",
      "Fit-out",
      "Project management",
      "Groundworks",
    ],
    roles: ["Site manager", "Quantity surveyor", "Carpenter", "Estimator"],
    nameWords: ["Builders", "Joinery", "Contracting", "Civil Works", "Homes"],
    news: [
      "We handed over a restored school building.",
      "Our safety record earned an industry award.",
      "We joined a regional apprenticeship network.",
    ],
  },
  {
    label: "Retail",
    slug: "retail",
    nouns: ["a retail business", "an independent retail chain", "a family-run retail company"],
    activities: [
      "sell outdoor clothing and camping gear",
      "run neighbourhood hardware stores",
      "sell books, stationery and games",
      "sell kitchenware online and in two shops",
    ],
    services: [
      "In-store advice",
      "Click and collect",
      "Repairs",
      "Gift cards",
      "Online shop",
      "Loyalty club",
    ],
    roles: ["Store manager", "Sales assistant", "Buyer", "Online merchandiser"],
    nameWords: ["Outfitters", "Stores", "Market", "Trading", "Goods", "Emporium"],
    news: [
      "Our spring catalogue is out.",
      "We extended the returns window.",
      "A repair corner opened in our flagship shop.",
    ],
  },
  {
    label: "Education",
    slug: "education",
    nouns: [
      "an education provider",
      "an independent education company",
      "a non-profit education organisation",
    ],
    activities: [
      "teach languages to adults",
      "run coding bootcamps for career changers",
      "offer tutoring for secondary-school pupils",
      "train apprentices in skilled trades",
    ],
    services: [
      "Evening classes",
      "Online courses",
      "Exam preparation",
      "Corporate training",
      "Summer schools",
      "Tutoring",
    ],
    roles: ["Course tutor", "Curriculum designer", "Admissions adviser", "Learning technologist"],
    nameWords: ["Academy", "Learning", "Institute", "Tutors", "College"],
    news: [
      "Enrolment for the autumn term is open.",
      "We added weekend classes.",
      "Our learners' exam results were published.",
    ],
  },
  {
    label: "Agriculture",
    slug: "agriculture",
    nouns: [
      "an agriculture business",
      "a cooperative working in agriculture",
      "a family business in agriculture",
    ],
    activities: [
      "grow apples and pears in orchards",
      "raise grass-fed cattle",
      "grow organic vegetables for box schemes",
      "produce seed potatoes and cereals",
    ],
    services: [
      "Fresh produce",
      "Seed supply",
      "Contract harvesting",
      "Farm shop",
      "Veg boxes",
      "Agronomy advice",
    ],
    roles: ["Farm hand", "Orchard supervisor", "Agronomist", "Tractor driver"],
    nameWords: ["Farms", "Orchards", "Growers", "Seeds", "Agri", "Fields"],
    news: [
      "Harvest started two weeks early.",
      "Our farm shop stocks new preserves.",
      "We planted new hedgerows along the lanes.",
    ],
  },
  {
    label: "Biotechnology",
    slug: "biotechnology",
    nouns: [
      "a biotechnology company",
      "an independent biotechnology firm",
      "a research-led biotechnology start-up",
    ],
    activities: [
      "develop enzymes for food processing",
      "engineer microbes that break down plastics",
      "develop diagnostic assays for veterinary use",
      "work on cell therapies for rare diseases",
    ],
    services: [
      "Contract research",
      "Assay development",
      "Fermentation scale-up",
      "Licensing",
      "Lab services",
      "Regulatory support",
    ],
    roles: ["Research scientist", "Lab technician", "Bioinformatician", "Quality assurance lead"],
    nameWords: ["Biosciences", "Therapeutics", "Genomics", "Bio", "Biologics"],
    news: [
      "Our enzyme paper was published in a peer-reviewed journal.",
      "We opened a new fermentation lab.",
      "A licensing agreement was signed with a partner.",
    ],
  },
  {
    label: "Hospitality",
    slug: "hospitality",
    nouns: [
      "a hospitality company",
      "an independent hospitality group",
      "a family-owned hospitality business",
    ],
    activities: [
      "run boutique hotels in historic buildings",
      "operate guesthouses and a lakeside inn",
      "run restaurants and event venues",
      "manage holiday cottages",
    ],
    services: [
      "Rooms and suites",
      "Weddings",
      "Conference venues",
      "Restaurant",
      "Holiday lets",
      "Spa",
    ],
    roles: ["Front-of-house manager", "Sous chef", "Housekeeper", "Events coordinator"],
    nameWords: ["Hotels", "Inns", "Guesthouses", "Lodges", "Resorts"],
    news: [
      "Our terrace restaurant reopened for the season.",
      "We refurbished the garden rooms.",
      "Wedding dates are available for next year.",
    ],
  },
  {
    label: "Media",
    slug: "media",
    nouns: [
      "a media company",
      "an independent media house",
      "a small media and publishing company",
    ],
    activities: [
      "publish regional magazines",
      "produce documentaries and podcasts",
      "run a local radio station",
      "publish illustrated books",
    ],
    services: [
      "Publishing",
      "Video production",
      "Podcasts",
      "Advertising",
      "Events",
      "Photography",
    ],
    roles: ["Editor", "Video producer", "Sound engineer", "Advertising sales executive"],
    nameWords: ["Press", "Studios", "Publishing", "Broadcasting", "Pictures"],
    news: [
      "Our documentary was shortlisted for a festival prize.",
      "A new podcast series launched.",
      "The autumn issue is on sale now.",
    ],
  },
  {
    label: "Professional services",
    slug: "professional-services",
    nouns: [
      "a professional services firm",
      "an independent professional services partnership",
      "a professional services consultancy",
    ],
    activities: [
      "advise companies on tax and accounting",
      "help councils plan public transport",
      "provide legal advice to small businesses",
      "run recruitment for engineering firms",
    ],
    services: [
      "Accounting",
      "Tax advice",
      "Legal services",
      "Recruitment",
      "Management consulting",
      "Audit",
    ],
    roles: ["Associate consultant", "Trainee accountant", "Paralegal", "Office manager"],
    nameWords: ["Consulting", "Advisory", "Associates", "Partners", "Chambers"],
    news: [
      "Two new partners joined the firm.",
      "We published our guide to the new tax rules.",
      "Our office moved to a larger floor.",
    ],
  },
];

interface Place {
  city: string;
  region?: string;
  country: string;
}

const PLACES: Place[] = [
  { city: "Tucson", region: "Arizona", country: "United States" },
  { city: "Portland", region: "Oregon", country: "United States" },
  { city: "Milwaukee", region: "Wisconsin", country: "United States" },
  { city: "Savannah", region: "Georgia", country: "United States" },
  { city: "Boise", region: "Idaho", country: "United States" },
  { city: "Richmond", region: "Virginia", country: "United States" },
  { city: "Albuquerque", region: "New Mexico", country: "United States" },
  { city: "Duluth", region: "Minnesota", country: "United States" },
  { city: "Seattle", region: "Washington", country: "United States" },
  { city: "Pittsburgh", region: "Pennsylvania", country: "United States" },
  { city: "Omaha", region: "Nebraska", country: "United States" },
  { city: "Austin", region: "Texas", country: "United States" },
  { city: "Leeds", region: "England", country: "United Kingdom" },
  { city: "Bristol", region: "England", country: "United Kingdom" },
  { city: "Glasgow", region: "Scotland", country: "United Kingdom" },
  { city: "Cardiff", region: "Wales", country: "United Kingdom" },
  { city: "Norwich", region: "England", country: "United Kingdom" },
  { city: "Belfast", region: "Northern Ireland", country: "United Kingdom" },
  { city: "Cork", country: "Ireland" },
  { city: "Galway", country: "Ireland" },
  { city: "Halifax", region: "Nova Scotia", country: "Canada" },
  { city: "Winnipeg", region: "Manitoba", country: "Canada" },
  { city: "Victoria", region: "British Columbia", country: "Canada" },
  { city: "Montreal", region: "Quebec", country: "Canada" },
  { city: "Bremen", country: "Germany" },
  { city: "Leipzig", country: "Germany" },
  { city: "Freiburg", country: "Germany" },
  { city: "Münster", country: "Germany" },
  { city: "Lyon", country: "France" },
  { city: "Bordeaux", country: "France" },
  { city: "Nantes", country: "France" },
  { city: "Utrecht", country: "Netherlands" },
  { city: "Groningen", country: "Netherlands" },
  { city: "Eindhoven", country: "Netherlands" },
  { city: "Ghent", country: "Belgium" },
  { city: "Leuven", country: "Belgium" },
  { city: "Seville", country: "Spain" },
  { city: "Valencia", country: "Spain" },
  { city: "Bilbao", country: "Spain" },
  { city: "Porto", country: "Portugal" },
  { city: "Turin", country: "Italy" },
  { city: "Bologna", country: "Italy" },
  { city: "Zürich", country: "Switzerland" },
  { city: "Basel", country: "Switzerland" },
  { city: "Graz", country: "Austria" },
  { city: "Aarhus", country: "Denmark" },
  { city: "Odense", country: "Denmark" },
  { city: "Malmö", country: "Sweden" },
  { city: "Uppsala", country: "Sweden" },
  { city: "Bergen", country: "Norway" },
  { city: "Trondheim", country: "Norway" },
  { city: "Tampere", country: "Finland" },
  { city: "Kraków", country: "Poland" },
  { city: "Gdańsk", country: "Poland" },
  { city: "Brno", country: "Czech Republic" },
  { city: "Reykjavík", country: "Iceland" },
  { city: "Adelaide", region: "South Australia", country: "Australia" },
  { city: "Hobart", region: "Tasmania", country: "Australia" },
  { city: "Perth", region: "Western Australia", country: "Australia" },
  { city: "Dunedin", country: "New Zealand" },
  { city: "Wellington", country: "New Zealand" },
  { city: "Sapporo", country: "Japan" },
  { city: "Fukuoka", country: "Japan" },
  { city: "Busan", country: "South Korea" },
  { city: "Pune", region: "Maharashtra", country: "India" },
  { city: "Coimbatore", region: "Tamil Nadu", country: "India" },
  { city: "Singapore", country: "Singapore" },
  { city: "Curitiba", region: "Paraná", country: "Brazil" },
  { city: "Monterrey", country: "Mexico" },
  { city: "Valparaíso", country: "Chile" },
  { city: "Durban", country: "South Africa" },
  { city: "Stellenbosch", country: "South Africa" },
  { city: "Mombasa", country: "Kenya" },
];

const LEGAL_FORMS: Record<string, string[]> = {
  "United States": ["Inc.", "LLC"],
  "United Kingdom": ["Ltd"],
  Ireland: ["Ltd"],
  Canada: ["Inc."],
  Germany: ["GmbH"],
  Austria: ["GmbH"],
  Switzerland: ["AG", "GmbH"],
  France: ["SAS"],
  Netherlands: ["B.V."],
  Belgium: ["BV"],
  Spain: ["S.L."],
  Portugal: ["Lda."],
  Italy: ["S.r.l."],
  Denmark: ["A/S"],
  Sweden: ["AB"],
  Norway: ["AS"],
  Finland: ["Oy"],
  Poland: ["Sp. z o.o."],
  Australia: ["Pty Ltd"],
  "New Zealand": ["Ltd"],
  Brazil: ["Ltda."],
  Mexico: ["S.A. de C.V."],
};

const PREFIXES = [
  "Harbourline",
  "Copperleaf",
  "Bramblewood",
  "Ashcombe",
  "Silverbirch",
  "Redfern",
  "Kestrel",
  "Blackmoor",
  "Marlowe",
  "Tidewater",
  "Fernhill",
  "Oakridge",
  "Stonebridge",
  "Larkspur",
  "Wrenfield",
  "Saltmarsh",
  "Ironbark",
  "Brightwater",
  "Aldergrove",
  "Thistledown",
  "Bellwether",
  "Cindervale",
  "Driftwood",
  "Foxglove",
  "Glenmore",
  "Hollowell",
  "Jasperwood",
  "Kingsmere",
  "Lowther",
  "Moorcroft",
  "Pinecrest",
  "Quarry Hill",
  "Rosewater",
  "Sablewood",
  "Tamarind",
  "Westerly",
  "Yarrow",
  "Zephyrine",
  "Amberley",
  "Birchgrove",
  "Cobalt Bay",
  "Dunmore Point",
  "Eastgate",
  "Fairhaven",
  "Goldcrest",
  "Highmoor",
  "Kittiwake",
  "Lanternfish",
  "Millbrook",
  "Orchard Lane",
  "Pebblestone",
  "Ravenscar",
  "Summerfield",
  "Thornbury",
  "Valemount",
  "Whitecliff",
  "Beacon Point",
  "Cedarbrook",
  "Dovetail",
  "Elmstead",
  "Fallowfield",
  "Greystone",
  "Ivywood",
  "Kelpie",
  "Lindenhall",
  "Marram",
  "Otterburn",
  "Riverbend",
  "Seabright",
  "Tollgate",
  "Underhill",
  "Verdigris",
  "Yellowhammer",
  "Crestline",
  "Deepwell",
  "Flintlock",
  "Galeforce",
  "Hawthorn",
  "Inchcape",
  "Meadowlark",
  "Nightjar",
  "Oxbow",
  "Prairie Rose",
  "Quayside",
  "Redwing",
  "Sandpiper",
  "Terrapin",
  "Vesper",
  "Waymark",
  "Wildrye",
  "Brackenridge",
  "Coldharbour",
  "Dapplegrey",
  "Emberwood",
  "Fieldfare",
  "Gorsemoor",
  "Heronsgate",
  "Juniper Ridge",
  "Kilnworth",
  "Lapwing",
  "Mossgiel",
  "Nettlecombe",
  "Oakhurst",
  "Puffin Rock",
  "Rushmere",
  "Skylark",
  "Tarnside",
  "Umberleigh",
  "Wolds End",
  "Alderbeck",
  "Bluebell",
  "Copperbeech",
  "Dewpond",
  "Eskdale",
  "Firthside",
  "Granitefall",
  "Hazelmere",
  "Ironside Quay",
  "Lochan",
  "Merrow",
];

const SURNAMES = [
  "Pemberton",
  "Calloway",
  "Lindqvist",
  "Okafor",
  "Van der Meer",
  "Kowalczyk",
  "Nakamura",
  "Oyelaran",
  "Haugen",
  "Moreau",
  "Castellano",
  "Brannigan",
  "Whitlock",
  "Achterberg",
  "Szabó",
  "Delacroix",
  "Iversen",
  "Adeyemi",
  "Rautio",
  "Petrović",
  "Lindgren",
  "Hargreaves",
  "Ashworth",
  "Quispe",
  "Ibarra",
  "Novák",
  "Bertolini",
  "Fairweather",
  "Drummond",
  "Ekström",
  "Halvorsen",
  "Marchetti",
  "Oduya",
  "Pritchard",
  "Sørensen",
  "Thackeray",
  "Vasquez",
  "Wetherby",
  "Yilmaz",
];

const FIRST_NAMES = [
  "Ada",
  "Bram",
  "Clara",
  "Dev",
  "Elin",
  "Farid",
  "Greta",
  "Hugo",
  "Ines",
  "Jonas",
  "Kofi",
  "Lena",
  "Mateo",
  "Nora",
  "Omar",
  "Priya",
  "Rosa",
  "Sven",
  "Tomasz",
  "Una",
  "Viktor",
  "Wen",
  "Yusuf",
];

const FILLER = [
  "We believe long-term relationships matter more than quick wins.",
  "Most of our customers have worked with us for many years.",
  "We reinvest a share of our profits in training.",
  "Our people are our best advertisement.",
  "We keep things simple: clear prices, honest advice and work done on time.",
  "Sustainability is part of every decision we make.",
  "We are proud to be independent and answerable only to our customers.",
  "Quality is checked at every step, not just at the end.",
  "We like to solve problems other people have given up on.",
  "Ask anyone who has worked with us and they will tell you we pick up the phone.",
  "Good work takes time, and we would rather get it right.",
  "We share what we learn with the wider community.",
];

const ABOUT_HEADINGS = [
  "About us",
  "Our story",
  "Who we are",
  "About the company",
  "Company profile",
];
const NAV_ABOUT_LABELS = ["About us", "About us", "About us", "About", "Company", "About us"];

// ---------------------------------------------------------------------------------------------
// Organisations

type Column = "industry" | "founded" | "employees" | "city" | "country";
const COLUMNS: Column[] = ["industry", "founded", "employees", "city", "country"];
type How = "json-ld" | "microdata" | "prose" | "javascript" | "directory";
type Case = "json-ld" | "microdata" | "prose" | "javascript" | "directory";
/** Columns that can be unknown everywhere (never the industry: every home page says it). */
type NullSet = Column[];

interface Org {
  name: string;
  domain: string;
  industry: Industry;
  place: Place;
  founded: number | null;
  /** ISO date or year-month for some JSON-LD foundingDate values. */
  foundedDetail: string;
  employees: number | null;
  city: string | null;
  country: string | null;
  case: Case;
  nulls: NullSet;
  knowsAbout: boolean;
  /** JSON-LD sub-case. */
  jsonLdOn: "index" | "about";
  jsonLdGraph: boolean;
  employeesRange: boolean;
  noFoundingDate: boolean;
  hasNews: boolean;
  hasCareers: boolean;
  aboutLabel: string;
  evidence: Record<Column, Map<string, How>>;
  decoys: Record<Column, string[]>;
  directoryPage: string;
  founderFirst: string;
  founderLast: string;
  /** The site's inline stylesheet. */
  style: string;
}

interface Seed {
  name: string;
  industry: string;
  place?: string;
  domain?: string;
}

// Hard cases: near-identical names, accents, an apostrophe, ampersands.
const HARD_CASES: Seed[] = [
  { name: "Northwind Analytics", industry: "Software", place: "Seattle" },
  { name: "Northwind Analytic Partners", industry: "Software", place: "Portland" },
  { name: "Granite Peak Capital", industry: "Financial services", place: "Leeds" },
  { name: "Granite Peak Capital Partners", industry: "Financial services", place: "Bristol" },
  { name: "O'Malley's Bakehouse", industry: "Food and beverage", place: "Cork" },
  { name: "Café Lumière Roasters", industry: "Food and beverage", place: "Lyon" },
  { name: "Søndergaard Møbelfabrik A/S", industry: "Manufacturing", place: "Aarhus" },
  { name: "Ferreira & Filhos Agrícola", industry: "Agriculture", place: "Porto" },
  { name: "Hale & Pardoe Engineering", industry: "Construction", place: "Leeds" },
  { name: "L'Atelier Numérique", industry: "Media", place: "Bordeaux" },
  { name: "Zürcher Präzisionstechnik AG", industry: "Manufacturing", place: "Zürich" },
  { name: "Hostal Peña Blanca", industry: "Hospitality", place: "Seville" },
];

function slugify(text: string): string {
  return text
    .replace(/ø/g, "o")
    .replace(/Ø/g, "O")
    .replace(/æ/g, "ae")
    .replace(/ß/g, "ss")
    .replace(/&/g, " and ")
    .normalize("NFD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/['’]/g, "")
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

function withoutLegalForm(name: string): string {
  const forms = [...new Set([...Object.values(LEGAL_FORMS).flat(), "AG"])];
  // Longest first: "Pty Ltd" before "Ltd".
  for (const form of forms.sort((a, b) => b.length - a.length)) {
    if (name.endsWith(` ${form}`)) return name.slice(0, -form.length - 1);
  }
  return name;
}

function generateName(industry: Industry, place: Place): string {
  const word = rng.pick(industry.nameWords);
  const roll = rng.next();
  let base: string;
  if (roll < 0.62) base = `${rng.pick(PREFIXES)} ${word}`;
  else if (roll < 0.8) base = `${rng.pick(SURNAMES)} ${word}`;
  else if (roll < 0.86) {
    const [a, b] = rng.shuffle(SURNAMES);
    base = `${a!} & ${b!}`;
  } else if (roll < 0.93) base = `${rng.pick(SURNAMES)} & Sons`;
  else base = `${rng.pick(PREFIXES)} ${rng.pick(PREFIXES).split(" ")[0]!} ${word}`;
  const forms = LEGAL_FORMS[place.country];
  if (forms && rng.chance(0.28)) base = `${base} ${rng.pick(forms)}`;
  return base;
}

function randomFounded(): number {
  const roll = rng.next();
  if (roll < 0.12) return rng.int(1850, 1919);
  if (roll < 0.35) return rng.int(1920, 1979);
  return rng.int(1980, 2022);
}

function randomEmployees(founded: number): number {
  // Log-uniform, smaller for young companies.
  const max = founded > 2015 ? Math.log(400) : Math.log(28_000);
  const n = Math.round(Math.exp(Math.log(4) + rng.next() * (max - Math.log(4))));
  return Math.max(3, n);
}

function siteStyle(): string {
  const font = rng.pick([
    "Georgia, serif",
    "system-ui, sans-serif",
    "Helvetica, Arial, sans-serif",
    "'Trebuchet MS', sans-serif",
  ]);
  const accent = rng.pick([
    "#0b5394",
    "#38761d",
    "#990000",
    "#b45f06",
    "#674ea7",
    "#134f5c",
    "#333",
  ]);
  return [
    "<style>",
    `body { font-family: ${font}; max-width: 46rem; margin: 0 auto; padding: 1rem; color: #222; }`,
    `header { border-bottom: 2px solid ${accent}; }`,
    `footer { border-top: 1px solid ${accent}; color: #555; font-size: 0.9em; }`,
    `a { color: ${accent}; }`,
    "nav a { margin-right: 0.75rem; }",
    "</style>",
  ].join("\n");
}

function emptyEvidence(): Record<Column, Map<string, How>> {
  return {
    industry: new Map(),
    founded: new Map(),
    employees: new Map(),
    city: new Map(),
    country: new Map(),
  };
}

function emptyDecoys(): Record<Column, string[]> {
  return { industry: [], founded: [], employees: [], city: [], country: [] };
}

function buildOrganisations(): Org[] {
  const seeds: { name: string; industry: Industry; place: Place }[] = [];
  const names = new Set<string>();
  const domains = new Set<string>();
  const domainOf = new Map<string, string>();
  const addSeed = (name: string, industry: Industry, place: Place): boolean => {
    let domain = slugify(withoutLegalForm(name));
    if (domains.has(domain)) domain = `${domain}-${slugify(place.city)}`;
    if (names.has(name.toLowerCase()) || domains.has(domain)) return false;
    names.add(name.toLowerCase());
    domains.add(domain);
    domainOf.set(name, `${domain}.example`);
    seeds.push({ name, industry, place });
    return true;
  };
  for (const seed of HARD_CASES) {
    const industry = INDUSTRIES.find((i) => i.label === seed.industry)!;
    const place = PLACES.find((p) => p.city === seed.place)!;
    if (!addSeed(seed.name, industry, place)) throw new Error(`duplicate ${seed.name}`);
  }
  while (seeds.length < ORGANISATION_COUNT) {
    const industry = rng.pick(INDUSTRIES);
    const place = rng.pick(PLACES);
    const name = generateName(industry, place);
    // Keep "Northwind"/"Granite Peak" unique to the near-duplicate hard cases.
    if (/^(Northwind|Granite Peak)/.test(name)) continue;
    addSeed(name, industry, place);
  }
  // Shuffle so the hard cases do not sit at the top of the CSV.
  const ordered = rng.shuffle(seeds);

  // Cases, by exact counts.
  const count = ORGANISATION_COUNT;
  const caseCounts: [Case, number][] = [
    ["json-ld", Math.round(count * 0.55)],
    ["microdata", Math.round(count * 0.15)],
    ["javascript", Math.round(count * 0.05)],
    ["directory", Math.round(count * 0.05)],
  ];
  const cases: Case[] = [];
  for (const [c, n] of caseCounts) for (let i = 0; i < n; i++) cases.push(c);
  while (cases.length < count) cases.push("prose");
  const shuffledCases = rng.shuffle(cases);

  const orgs: Org[] = ordered.map((seed, i) => {
    const founded = randomFounded();
    const employees = randomEmployees(founded);
    const month = rng.int(1, 12);
    const day = rng.int(1, 28);
    const pad = (n: number) => String(n).padStart(2, "0");
    const detailRoll = rng.next();
    const foundedDetail =
      detailRoll < 0.55
        ? String(founded)
        : detailRoll < 0.85
          ? `${founded}-${pad(month)}-${pad(day)}`
          : `${founded}-${pad(month)}`;
    const hasNavRoll = rng.next();
    return {
      name: seed.name,
      domain: domainOf.get(seed.name)!,
      industry: seed.industry,
      place: seed.place,
      founded,
      foundedDetail,
      employees,
      city: seed.place.city,
      country: seed.place.country,
      case: shuffledCases[i]!,
      nulls: [],
      knowsAbout: false,
      jsonLdOn: rng.chance(0.4) ? "index" : "about",
      jsonLdGraph: rng.chance(0.15),
      employeesRange: false,
      noFoundingDate: false,
      hasNews: hasNavRoll < 0.85,
      hasCareers: hasNavRoll >= 0.15,
      aboutLabel: rng.pick(NAV_ABOUT_LABELS),
      evidence: emptyEvidence(),
      decoys: emptyDecoys(),
      directoryPage: "",
      founderFirst: rng.pick(FIRST_NAMES),
      founderLast: rng.pick(SURNAMES),
      style: siteStyle(),
    };
  });

  // ~3%: some facts are on no page at all.
  const nullSets: NullSet[] = [
    ["employees"],
    ["founded"],
    ["employees", "founded"],
    ["city", "country"],
    ["founded", "city", "country"],
    ["employees"],
    ["founded"],
    ["employees", "city", "country"],
    ["employees"],
  ];
  const nullCandidates = rng.shuffle(
    orgs.filter((o) => ["json-ld", "microdata", "prose"].includes(o.case)),
  );
  nullSets.forEach((set, i) => {
    const org = nullCandidates[i]!;
    org.nulls = set;
    if (set.includes("founded")) org.founded = null;
    if (set.includes("employees")) org.employees = null;
    if (set.includes("city")) org.city = null;
    if (set.includes("country")) org.country = null;
  });

  // ~20% of all organisations name their industry in schema.org knowsAbout.
  const structured = rng.shuffle(
    orgs.filter((o) => o.case === "json-ld" || o.case === "microdata"),
  );
  structured.slice(0, Math.round(count * 0.2)).forEach((o) => (o.knowsAbout = true));

  // JSON-LD that holds less than the prose: a headcount range, no foundingDate.
  const jsonLd = rng.shuffle(orgs.filter((o) => o.case === "json-ld" && o.nulls.length === 0));
  jsonLd.slice(0, 8).forEach((o) => (o.employeesRange = true));
  jsonLd.slice(8, 14).forEach((o) => (o.noFoundingDate = true));
  return orgs;
}

// ---------------------------------------------------------------------------------------------
// Text helpers

function escapeHtml(text: string): string {
  return text
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

function thirdPerson(phrase: string): string {
  const [verb, ...rest] = phrase.split(" ");
  const v = verb!;
  let conjugated: string;
  if (v === "do") conjugated = "does";
  else if (v === "have") conjugated = "has";
  else if (/[^aeiou]y$/.test(v)) conjugated = `${v.slice(0, -1)}ies`;
  else if (/(s|sh|ch|x|z)$/.test(v)) conjugated = `${v}es`;
  else conjugated = `${v}s`;
  return [conjugated, ...rest].join(" ");
}

function formatCount(n: number): string {
  return n >= 1000 && rng.chance(0.65) ? n.toLocaleString("en-US") : String(n);
}

/** "Tucson, Arizona, United States", "Bergen, Norway", "Norway", "" */
function placePhrase(org: Org): string {
  if (org.city && org.country) {
    if (org.place.region && org.place.region !== org.city && rng.chance(0.4)) {
      return `${org.city}, ${org.place.region}, ${org.country}`;
    }
    return `${org.city}, ${org.country}`;
  }
  return org.country ?? "";
}

function monthName(month: number): string {
  return [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
  ][month - 1]!;
}

/** "in 1987", or "on 12 April 1987" when the organisation's foundingDate is a full date. */
function foundedPhrase(org: Org): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(org.foundedDetail);
  if (m && rng.chance(0.5)) return `on ${Number(m[3])} ${monthName(Number(m[2]))} ${m[1]!}`;
  return `in ${org.founded}`;
}

function startSize(n: number): string {
  if (n < 12) return "a single founder";
  if (n < 60) return "a two-person workshop";
  if (n < 400) return "a handful of people";
  return "a small team";
}

// ---------------------------------------------------------------------------------------------
// Pages

interface PageOptions {
  title: string;
  style?: string;
  description?: string;
  head?: string;
  body: string;
  /** Attributes of <body>. */
  bodyAttributes?: string;
}

function htmlPage(options: PageOptions): string {
  const lines = [
    "<!doctype html>",
    '<html lang="en">',
    "<head>",
    '<meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${escapeHtml(options.title)}</title>`,
  ];
  if (options.description) {
    lines.push(`<meta name="description" content="${escapeHtml(options.description)}">`);
  }
  if (options.style) lines.push(options.style);
  if (options.head) lines.push(options.head);
  lines.push(
    "</head>",
    `<body${options.bodyAttributes ?? ""}>`,
    options.body,
    "</body>",
    "</html>",
    "",
  );
  return lines.join("\n");
}

function jsonLdScript(data: unknown): string {
  const json = JSON.stringify(data, null, 2).replace(/<\//g, "<\\/");
  return `<script type="application/ld+json">\n${json}\n</script>`;
}

function siteHeader(org: Org): string {
  const links = ['<a href="index.html">Home</a>', `<a href="about.html">${org.aboutLabel}</a>`];
  if (org.hasNews) links.push('<a href="news.html">News</a>');
  if (org.hasCareers) links.push('<a href="careers.html">Careers</a>');
  return [
    "<header>",
    `<p class="brand"><a href="index.html">${escapeHtml(org.name)}</a></p>`,
    `<nav>${links.join(" | ")}</nav>`,
    "</header>",
  ].join("\n");
}

function siteFooter(org: Org): string {
  return `<footer>\n<p>© 2024 ${escapeHtml(org.name)} · <a href="mailto:hello@${org.domain}">hello@${org.domain}</a></p>\n</footer>`;
}

const files = new Map<string, string>();

function writePage(path: string, html: string): void {
  if (files.has(path)) throw new Error(`page written twice: ${path}`);
  files.set(path, html);
}

function addEvidence(org: Org, column: Column, path: string, how: How): void {
  if (org.nulls.includes(column)) throw new Error(`evidence for a null ${column}: ${org.domain}`);
  const existing = org.evidence[column].get(path);
  // A page with structured data and the same fact in its text counts as structured.
  if (existing === undefined || existing === "prose") org.evidence[column].set(path, how);
}

function industryMention(org: Org, path: string): string {
  addEvidence(org, "industry", path, "prose");
  return rng.pick(org.industry.nouns);
}

// -- Organisation JSON-LD ---------------------------------------------------------------------

function organisationJsonLd(org: Org, path: string): unknown {
  const type = rng.pick([
    "Organization",
    "Organization",
    "Organization",
    "Corporation",
    "LocalBusiness",
  ]);
  const site = `https://${org.domain}/`;
  const node: Record<string, unknown> = {
    "@context": "https://schema.org",
    "@type": type,
    name: org.name,
    url: site,
    logo: `${site}logo.png`,
  };
  if (org.founded !== null && !org.noFoundingDate) {
    const roll = rng.next();
    node.foundingDate = roll < 0.12 ? org.founded : org.foundedDetail;
    addEvidence(org, "founded", path, "json-ld");
  }
  if (org.employees !== null) {
    if (org.employeesRange) {
      const bounds = [1, 11, 51, 201, 501, 1001, 5001, 10001];
      let low = 1;
      for (const b of bounds) if (org.employees >= b) low = b;
      const next = bounds[bounds.indexOf(low) + 1];
      node.numberOfEmployees =
        next === undefined
          ? { "@type": "QuantitativeValue", minValue: low }
          : { "@type": "QuantitativeValue", minValue: low, maxValue: next - 1 };
    } else {
      const roll = rng.next();
      node.numberOfEmployees =
        roll < 0.45
          ? { "@type": "QuantitativeValue", value: org.employees }
          : roll < 0.85
            ? org.employees
            : String(org.employees);
      addEvidence(org, "employees", path, "json-ld");
    }
  }
  if (org.city !== null || org.country !== null) {
    const address: Record<string, unknown> = { "@type": "PostalAddress" };
    if (org.city !== null) {
      address.streetAddress = `${rng.int(1, 180)} ${rng.pick(["Harbour Road", "Mill Lane", "Station Street", "Market Square", "Canal Walk", "Park Avenue", "Industrial Way"])}`;
      address.addressLocality = org.city;
      address.postalCode = String(rng.int(10000, 99999));
      if (org.place.region && rng.chance(0.5)) address.addressRegion = org.place.region;
      addEvidence(org, "city", path, "json-ld");
    }
    if (org.country !== null) {
      address.addressCountry = rng.chance(0.2)
        ? { "@type": "Country", name: org.country }
        : org.country;
      addEvidence(org, "country", path, "json-ld");
    }
    node.address = address;
  }
  if (org.knowsAbout) {
    node.knowsAbout = rng.chance(0.5) ? org.industry.label : [org.industry.label];
    addEvidence(org, "industry", path, "json-ld");
  }
  if (rng.chance(0.3)) node.email = `hello@${org.domain}`;
  if (!org.jsonLdGraph) return node;
  const id = `${site}#organization`;
  delete node["@context"];
  return {
    "@context": "https://schema.org",
    "@graph": [
      {
        "@type": "WebSite",
        "@id": `${site}#website`,
        url: site,
        name: org.name,
        publisher: { "@id": id },
      },
      { ...node, "@id": id },
      {
        "@type": path.endsWith("about.html") ? "AboutPage" : "WebPage",
        url: `${site}${path.split("/").pop()!}`,
        mainEntity: { "@id": id },
      },
    ],
  };
}

// -- Facts in prose -----------------------------------------------------------------------------

/** Sentences that state every fact in `columns` (only non-null ones), recorded as evidence. */
function factSentences(org: Org, path: string, columns: Column[]): string[] {
  // City and country are written together: a place sentence states both.
  const wanted: Column[] =
    columns.includes("city") || columns.includes("country")
      ? [...columns, "city", "country"]
      : columns;
  const want = (c: Column) => wanted.includes(c) && !org.nulls.includes(c);
  const sentences: string[] = [];
  const n = org.employees ?? 0;
  const year = org.founded ?? 0;
  let doneFounded = !want("founded");
  let doneEmployees = !want("employees");
  let donePlace = !want("city") && !want("country");
  const recordPlace = () => {
    if (org.city !== null && want("city")) addEvidence(org, "city", path, "prose");
    if (org.country !== null && want("country")) addEvidence(org, "country", path, "prose");
  };

  // One sentence with all three, sometimes.
  if (!doneFounded && !doneEmployees && !donePlace && org.city !== null && rng.chance(0.45)) {
    const place = placePhrase(org);
    const count = formatCount(n);
    sentences.push(
      rng.pick([
        `Founded in ${year} in ${place}, the company employs about ${count} people.`,
        `Established in ${year}, ${escapeHtml(org.name)} now has ${count} employees and its head office in ${place}.`,
        `Since ${year} we have grown from ${startSize(n)} into a team of ${count}, still based in ${place}.`,
        `${escapeHtml(org.name)} was set up in ${place} in ${year}; today ${count} people work for the company.`,
        `We started in ${place} in ${year}. There are now ${count} of us.`,
      ]),
    );
    addEvidence(org, "founded", path, "prose");
    addEvidence(org, "employees", path, "prose");
    recordPlace();
    doneFounded = doneEmployees = donePlace = true;
  }
  if (!doneFounded) {
    const when = foundedPhrase(org);
    sentences.push(
      rng.pick([
        `${escapeHtml(org.name)} was founded ${when}.`,
        `The business was established ${when} by ${org.founderFirst} ${org.founderLast}.`,
        `Our history goes back to ${year}, when ${org.founderFirst} ${org.founderLast} opened the first workshop.`,
        `${escapeHtml(org.name)} opened its doors ${when}.`,
        `The company was founded ${when} and has stayed independent ever since.`,
      ]),
    );
    addEvidence(org, "founded", path, "prose");
  }
  if (!donePlace) {
    const place = placePhrase(org);
    sentences.push(
      org.city === null
        ? rng.pick([
            `We work from a small office in ${place}.`,
            `The company is registered in ${place}.`,
          ])
        : rng.pick([
            `Our head office is in ${place}.`,
            `We are headquartered in ${place}.`,
            `${escapeHtml(org.name)} is based in ${place}.`,
            `From our base in ${place}, we serve customers near and far.`,
            `Home for us is ${place}.`,
          ]),
    );
    recordPlace();
  }
  if (!doneEmployees) {
    const count = formatCount(n);
    sentences.push(
      rng.pick([
        `Today we employ ${count} people.`,
        `The company has a staff of ${count}.`,
        `Our team of ${count} shares one goal: doing the job properly.`,
        `${count} employees keep the business running.`,
        `We are ${count} people strong.`,
        `The workforce numbers ${count}.`,
      ]),
    );
    addEvidence(org, "employees", path, "prose");
  }
  return sentences;
}

/** A "key facts" list in plain HTML (no markup), recorded as prose evidence. */
function factList(org: Org, path: string): string {
  const items: string[] = [];
  if (org.founded !== null) {
    items.push(`<li>${rng.pick(["Founded", "Established", "Year founded"])}: ${org.founded}</li>`);
    addEvidence(org, "founded", path, "prose");
  }
  if (org.city !== null || org.country !== null) {
    const where = [org.city, org.country].filter(Boolean).join(", ");
    items.push(`<li>${rng.pick(["Headquarters", "Head office", "Location"])}: ${where}</li>`);
    if (org.city !== null) addEvidence(org, "city", path, "prose");
    if (org.country !== null) addEvidence(org, "country", path, "prose");
  }
  if (org.employees !== null) {
    items.push(
      `<li>${rng.pick(["Employees", "Staff", "Team size"])}: ${formatCount(org.employees)}</li>`,
    );
    addEvidence(org, "employees", path, "prose");
  }
  const heading = rng.pick(["At a glance", "Key facts", "Facts and figures"]);
  return `<h2>${heading}</h2>\n<ul>\n${items.join("\n")}\n</ul>`;
}

/** The first paragraph of an about page: what the organisation is and does. */
function aboutIntro(org: Org, path: string, activity: string): string {
  const name = escapeHtml(org.name);
  const noun = industryMention(org, path);
  const variant = rng.int(0, 3);
  if (variant === 0) return `${name} is ${noun}. We ${activity}.`;
  if (variant === 1) return `We ${activity}. ${name} is ${noun}, and proud of it.`;
  if (variant === 2) return `${name} ${thirdPerson(activity)}. In short, we are ${noun}.`;
  return `As ${noun}, ${name} ${thirdPerson(activity)}.`;
}

function storyParagraph(): string {
  return rng.shuffle(FILLER).slice(0, rng.int(1, 2)).join(" ");
}

// -- Microdata ----------------------------------------------------------------------------------

function microdataBlock(
  org: Org,
  path: string,
  heading: string,
  activity: string,
  extra: string[],
): string {
  const parts: string[] = [];
  parts.push(`<section itemscope itemtype="https://schema.org/Organization">`);
  parts.push(`<h1>${escapeHtml(heading)}</h1>`);
  parts.push(
    `<p><span itemprop="name">${escapeHtml(org.name)}</span> is ${industryMention(org, path)}. We ${activity}.</p>`,
  );
  parts.push(...extra.map((p) => `<p>${p}</p>`));
  const rows: string[] = [];
  if (org.founded !== null) {
    rows.push(
      rng.chance(0.5)
        ? `<dt>Founded</dt><dd><time itemprop="foundingDate" datetime="${org.foundedDetail}">${org.founded}</time></dd>`
        : `<dt>Founded</dt><dd itemprop="foundingDate">${org.founded}</dd>`,
    );
    addEvidence(org, "founded", path, "microdata");
  }
  if (org.city !== null || org.country !== null) {
    const inner: string[] = [];
    if (org.city !== null) {
      inner.push(`<span itemprop="addressLocality">${escapeHtml(org.city)}</span>`);
      addEvidence(org, "city", path, "microdata");
    }
    if (org.country !== null) {
      inner.push(`<span itemprop="addressCountry">${escapeHtml(org.country)}</span>`);
      addEvidence(org, "country", path, "microdata");
    }
    rows.push(
      `<dt>Head office</dt><dd itemprop="address" itemscope itemtype="https://schema.org/PostalAddress">${inner.join(", ")}</dd>`,
    );
  }
  if (org.employees !== null) {
    const roll = rng.next();
    const shown = org.employees.toLocaleString("en-US");
    rows.push(
      roll < 0.4
        ? `<dt>Employees</dt><dd itemprop="numberOfEmployees">${org.employees}</dd>`
        : roll < 0.75
          ? `<dt>Employees</dt><dd><data itemprop="numberOfEmployees" value="${org.employees}">${shown}</data></dd>`
          : `<dt>Employees</dt><dd itemprop="numberOfEmployees" itemscope itemtype="https://schema.org/QuantitativeValue"><span itemprop="value">${org.employees}</span></dd>`,
    );
    addEvidence(org, "employees", path, "microdata");
  }
  if (org.knowsAbout) {
    parts.push(`<meta itemprop="knowsAbout" content="${escapeHtml(org.industry.label)}">`);
    addEvidence(org, "industry", path, "microdata");
  }
  parts.push(`<h2>${rng.pick(["At a glance", "Key facts", "Company details"])}</h2>`);
  parts.push(`<dl>\n${rows.join("\n")}\n</dl>`);
  parts.push(`<link itemprop="url" href="https://${org.domain}/">`);
  parts.push("</section>");
  return parts.join("\n");
}

// -- JavaScript-rendered about page ---------------------------------------------------------------

function javascriptAbout(org: Org, path: string, heading: string): string {
  const data = {
    name: org.name,
    founded: org.founded,
    city: org.city,
    country: org.country,
    staff: org.employees,
    founder: `${org.founderFirst} ${org.founderLast}`,
  };
  for (const c of ["founded", "employees", "city", "country"] as const)
    addEvidence(org, c, path, "javascript");
  const variant = rng.int(0, 2);
  const sentence =
    variant === 0
      ? '"Founded in " + d.founded + " by " + d.founder + ", " + d.name + " is based in " + d.city + ", " + d.country + " and employs " + d.staff + " people."'
      : variant === 1
        ? '"Since " + d.founded + ", our home has been " + d.city + ", " + d.country + ". Today " + d.staff + " people work here."'
        : '"We were established in " + d.founded + ". Our team of " + d.staff + " works from " + d.city + ", " + d.country + "."';
  const script = [
    '<script type="module">',
    `  const d = ${JSON.stringify(data)};`,
    '  const app = document.getElementById("app");',
    `  app.innerHTML = "<h1>${escapeHtml(heading)}</h1><p>" + ${sentence} + "</p>";`,
    "</script>",
  ].join("\n");
  return [
    siteHeader(org),
    '<main>\n<div id="app"></div>\n<noscript>This page needs JavaScript.</noscript>\n</main>',
    script,
    siteFooter(org),
  ].join("\n");
}

// -- One organisation's site --------------------------------------------------------------------

function buildSite(org: Org): void {
  const base = org.domain;
  const indexPath = `${base}/index.html`;
  const aboutPath = `${base}/about.html`;
  const factsOnOwnSite = org.case !== "directory" && org.case !== "javascript";

  // index.html
  const activity = rng.pick(org.industry.activities);
  const intro = rng.pick([
    `${escapeHtml(org.name)} is ${industryMention(org, indexPath)}. We ${activity}.`,
    `At ${escapeHtml(org.name)}, we ${activity}. We are ${industryMention(org, indexPath)} that puts customers first.`,
    `${escapeHtml(org.name)} ${thirdPerson(activity)}. As ${industryMention(org, indexPath)}, we care about doing it well.`,
  ]);
  const indexParagraphs = [intro, storyParagraph()];
  if (factsOnOwnSite && org.founded !== null && rng.chance(0.25)) {
    indexParagraphs.push(
      rng.pick([`Serving customers since ${org.founded}.`, `Trusted since ${org.founded}.`]),
    );
    addEvidence(org, "founded", indexPath, "prose");
  }
  if (factsOnOwnSite && org.city !== null && org.country !== null && rng.chance(0.2)) {
    indexParagraphs.push(`Proudly based in ${org.city}, ${org.country}.`);
    addEvidence(org, "city", indexPath, "prose");
    addEvidence(org, "country", indexPath, "prose");
  }
  const services = rng.shuffle(org.industry.services).slice(0, 3);
  let indexHead = "";
  const jsonLdOnIndex = org.case === "json-ld" && org.jsonLdOn === "index";
  if (jsonLdOnIndex) indexHead = jsonLdScript(organisationJsonLd(org, indexPath));
  const tagline = rng.pick(["Welcome", "Hello", `Welcome to ${org.name}`, "What we do"]);
  writePage(
    indexPath,
    htmlPage({
      style: org.style,
      title: org.name,
      description: `${org.name}: ${activity}.`,
      head: `<meta property="og:title" content="${escapeHtml(org.name)}">\n<meta property="og:type" content="website">${indexHead ? `\n${indexHead}` : ""}`,
      body: [
        siteHeader(org),
        "<main>",
        `<h1>${escapeHtml(rng.chance(0.5) ? org.name : tagline)}</h1>`,
        ...indexParagraphs.map((p) => `<p>${p}</p>`),
        "<h2>Services</h2>",
        `<ul>\n${services.map((s) => `<li>${s}</li>`).join("\n")}\n</ul>`,
        `<p><a href="about.html">${rng.pick(["Learn more about us", "Read our story", "More about the company"])}</a></p>`,
        "</main>",
        siteFooter(org),
      ].join("\n"),
    }),
  );

  // about.html
  const heading = rng.pick(ABOUT_HEADINGS);
  const aboutTitle = rng.pick([
    `About us | ${org.name}`,
    `${org.name} — About`,
    `About ${org.name}`,
    `Our story - ${org.name}`,
  ]);
  let aboutBody: string;
  let aboutHead = "";
  const allFacts: Column[] = ["founded", "employees", "city", "country"];
  switch (org.case) {
    case "prose": {
      const paragraphs: string[] = [];
      const useList = rng.chance(0.3);
      paragraphs.push(aboutIntro(org, aboutPath, activity));
      if (!useList) paragraphs.push(factSentences(org, aboutPath, allFacts).join(" "));
      paragraphs.push(storyParagraph());
      aboutBody = [
        siteHeader(org),
        "<main>\n<article>",
        `<h1>${heading}</h1>`,
        ...paragraphs.map((p) => `<p>${p}</p>`),
        useList ? factList(org, aboutPath) : "",
        "</article>\n</main>",
        siteFooter(org),
      ]
        .filter(Boolean)
        .join("\n");
      break;
    }
    case "json-ld": {
      if (org.jsonLdOn === "about") aboutHead = jsonLdScript(organisationJsonLd(org, aboutPath));
      // Facts the JSON-LD lacks must be in the text; the rest sometimes are too.
      const proseFacts = allFacts.filter(
        (c) =>
          (c === "employees" && org.employeesRange) ||
          (c === "founded" && org.noFoundingDate) ||
          rng.chance(0.45),
      );
      const paragraphs = [
        aboutIntro(org, aboutPath, activity),
        ...(proseFacts.length > 0 ? [factSentences(org, aboutPath, proseFacts).join(" ")] : []),
        storyParagraph(),
      ];
      aboutBody = [
        siteHeader(org),
        "<main>\n<article>",
        `<h1>${heading}</h1>`,
        ...paragraphs.map((p) => `<p>${p}</p>`),
        "</article>\n</main>",
        siteFooter(org),
      ].join("\n");
      break;
    }
    case "microdata": {
      aboutBody = [
        siteHeader(org),
        "<main>",
        microdataBlock(org, aboutPath, heading, activity, [storyParagraph()]),
        "</main>",
        siteFooter(org),
      ].join("\n");
      break;
    }
    case "javascript": {
      aboutBody = javascriptAbout(org, aboutPath, heading);
      break;
    }
    case "directory": {
      const directoryLink = `../directory/${org.directoryPage}`;
      aboutBody = [
        siteHeader(org),
        "<main>\n<article>",
        `<h1>${heading}</h1>`,
        `<p>${aboutIntro(org, aboutPath, activity)}</p>`,
        `<p>${storyParagraph()}</p>`,
        `<p>${rng.pick(["Company facts", "Our registration details", "Company details"])} are listed in the <a href="${directoryLink}">Open Business Register</a>.</p>`,
        "</article>\n</main>",
        siteFooter(org),
      ].join("\n");
      break;
    }
  }
  writePage(
    aboutPath,
    htmlPage({
      style: org.style,
      title: aboutTitle,
      head: aboutHead || undefined,
      body: aboutBody,
    }),
  );

  // careers.html
  if (org.hasCareers) {
    const careersPath = `${base}/careers.html`;
    const roles = rng.shuffle(org.industry.roles).slice(0, rng.int(1, 3));
    const paragraphs = [
      rng.pick([
        `We are always glad to hear from people who want to join ${escapeHtml(org.name)}.`,
        `Want to work with us? ${escapeHtml(org.name)} is hiring.`,
        `Come and build your career at ${escapeHtml(org.name)}.`,
      ]),
    ];
    if (factsOnOwnSite && org.employees !== null && rng.chance(0.15)) {
      paragraphs.push(`Join our team of ${formatCount(org.employees)} colleagues.`);
      addEvidence(org, "employees", careersPath, "prose");
    }
    paragraphs.push(
      `What we offer: ${rng
        .shuffle([
          "flexible hours",
          "a training budget for everyone",
          "a pension scheme",
          "paid volunteering days",
          "a cycle-to-work scheme",
          "generous parental leave",
          "free lunches on Fridays",
          "a quiet, well-equipped workplace",
        ])
        .slice(0, 3)
        .join(", ")}.`,
    );
    paragraphs.push(
      `Send your CV and a short letter to <a href="mailto:jobs@${org.domain}">jobs@${org.domain}</a>.`,
    );
    writePage(
      careersPath,
      htmlPage({
        style: org.style,
        title: `Careers | ${org.name}`,
        body: [
          siteHeader(org),
          "<main>",
          "<h1>Careers</h1>",
          `<p>${paragraphs[0]!}</p>`,
          "<h2>Open positions</h2>",
          `<ul>\n${roles.map((r) => `<li>${r}</li>`).join("\n")}\n</ul>`,
          ...paragraphs.slice(1).map((p) => `<p>${p}</p>`),
          "</main>",
          siteFooter(org),
        ].join("\n"),
      }),
    );
  }
}

function buildNews(org: Org, decoyItems: string[]): void {
  if (!org.hasNews) return;
  const items = rng.shuffle(org.industry.news).slice(0, rng.int(2, 3));
  const dates = rng
    .shuffle([
      "2023-03-14",
      "2023-06-02",
      "2023-09-21",
      "2023-11-08",
      "2024-01-30",
      "2024-04-17",
      "2024-07-05",
    ])
    .slice(0, items.length + decoyItems.length)
    .sort()
    .reverse();
  const entries = [...decoyItems, ...items].map((text, i) => {
    const date = dates[i]!;
    return `<article>\n<h2><time datetime="${date}">${date}</time></h2>\n<p>${text}</p>\n</article>`;
  });
  writePage(
    `${org.domain}/news.html`,
    htmlPage({
      style: org.style,
      title: `News | ${org.name}`,
      body: [
        siteHeader(org),
        "<main>",
        "<h1>News</h1>",
        `<p>${rng.pick(["The latest from", "Updates from", "What is new at"])} ${escapeHtml(org.name)}.</p>`,
        ...entries,
        "</main>",
        siteFooter(org),
      ].join("\n"),
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Decoys: other sites mention an organisation in passing with a wrong number or place

interface Decoy {
  target: Org;
  column: "founded" | "employees" | "city";
  wrong: string;
  /** The host organisation whose news page carries it, else a trade-press article. */
  host?: Org;
  url: string;
}

function wrongEmployees(org: Org, avoid: Org[]): number {
  for (;;) {
    const base = org.employees ?? rng.int(40, 900);
    const factor = rng.pick([3, 4, 6, 8, 12, 20]);
    const raw = base * factor;
    const digits = Math.max(0, String(raw).length - 2);
    const rounded = Math.round(raw / 10 ** digits) * 10 ** digits;
    if (rounded !== org.employees && avoid.every((o) => o.employees !== rounded)) return rounded;
  }
}

function wrongFounded(org: Org, avoid: Org[]): number {
  for (;;) {
    const base = org.founded ?? rng.int(1950, 2010);
    const delta = rng.int(6, 40) * (rng.chance(0.5) ? -1 : 1);
    const year = Math.min(2022, Math.max(1850, base + delta));
    if (year !== org.founded && avoid.every((o) => o.founded !== year)) return year;
  }
}

/** The decoy in the words of the host organisation ("we") or of a trade-press article. */
function decoySentence(decoy: Decoy, voice: "we" | "press"): string {
  const t = escapeHtml(decoy.target.name);
  const n = decoy.column === "employees" ? Number(decoy.wrong).toLocaleString("en-US") : "";
  const w = decoy.wrong;
  const options: Record<Decoy["column"], Record<"we" | "press", string[]>> = {
    employees: {
      we: [
        `We now compete head-to-head with ${t}, a rival with ${n} staff.`,
        `Industry peers such as ${t}, which employs some ${n} people, are watching closely.`,
        `Even larger players like ${t} (around ${n} employees) have taken notice.`,
      ],
      press: [
        `Larger players such as ${t}, which employs some ${n} people, are watching closely.`,
        `${t}, with around ${n} staff, says it has felt the squeeze too.`,
      ],
    },
    founded: {
      we: [
        `That puts us alongside ${t}, founded in ${w}, as one of the older names in the trade.`,
        `Like the ${w}-founded ${t}, we have stayed independent.`,
      ],
      press: [
        `Older names such as ${t}, founded in ${w}, have seen this before.`,
        `The ${w}-founded ${t} says it has weathered worse.`,
      ],
    },
    city: {
      we: [
        `We follow the ${w}-based ${t} in making the switch.`,
        `A similar project is under way at ${t} in ${w}.`,
      ],
      press: [
        `A similar project is under way at the ${w}-based ${t}.`,
        `In ${w}, ${t} is trying the same approach.`,
      ],
    },
  };
  return rng.pick(options[decoy.column][voice]);
}

// ---------------------------------------------------------------------------------------------
// Directory: the Open Business Register, one listing per industry

interface DirectoryRow {
  org: Org;
  showFounded: boolean;
  showEmployees: boolean;
  showPlace: boolean;
}

function planDirectory(orgs: Org[]): Map<string, DirectoryRow[][]> {
  const pages = new Map<string, DirectoryRow[][]>();
  for (const industry of INDUSTRIES) {
    const members = orgs
      .filter((o) => o.industry === industry)
      .sort((a, b) => a.name.localeCompare(b.name, "en"));
    const rows = members.map((org): DirectoryRow => {
      if (org.case === "directory")
        return { org, showFounded: true, showEmployees: true, showPlace: true };
      if (org.case === "javascript")
        return { org, showFounded: false, showEmployees: false, showPlace: false };
      return {
        org,
        showFounded: rng.chance(0.4),
        showEmployees: rng.chance(0.4),
        showPlace: rng.chance(0.7),
      };
    });
    const chunks: DirectoryRow[][] = [];
    for (let i = 0; i < rows.length; i += DIRECTORY_ROWS_PER_PAGE)
      chunks.push(rows.slice(i, i + DIRECTORY_ROWS_PER_PAGE));
    chunks.forEach((chunk, i) => {
      const file = i === 0 ? `${industry.slug}.html` : `${industry.slug}-${i + 1}.html`;
      for (const row of chunk) row.org.directoryPage = file;
    });
    pages.set(industry.slug, chunks);
  }
  return pages;
}

function buildDirectory(pages: Map<string, DirectoryRow[][]>): void {
  const dash = "—";
  for (const industry of INDUSTRIES) {
    const chunks = pages.get(industry.slug) ?? [];
    chunks.forEach((chunk, i) => {
      const file = i === 0 ? `${industry.slug}.html` : `${industry.slug}-${i + 1}.html`;
      const path = `directory/${file}`;
      const rows = chunk.map(({ org, showFounded, showEmployees, showPlace }) => {
        addEvidence(org, "industry", path, "directory");
        const cells = [`<a href="../${org.domain}/index.html">${escapeHtml(org.name)}</a>`];
        const city = showPlace && org.city !== null ? org.city : null;
        const country = showPlace && org.country !== null ? org.country : null;
        if (city !== null) addEvidence(org, "city", path, "directory");
        if (country !== null) addEvidence(org, "country", path, "directory");
        const founded = showFounded && org.founded !== null ? org.founded : null;
        if (founded !== null) addEvidence(org, "founded", path, "directory");
        const employees = showEmployees && org.employees !== null ? org.employees : null;
        if (employees !== null) addEvidence(org, "employees", path, "directory");
        cells.push(
          escapeHtml(city ?? dash),
          escapeHtml(country ?? dash),
          String(founded ?? dash),
          employees === null ? dash : employees.toLocaleString("en-US"),
        );
        return `<tr>${cells.map((c) => `<td>${c}</td>`).join("")}</tr>`;
      });
      const nav: string[] = ['<a href="index.html">All industries</a>'];
      if (i > 0)
        nav.push(
          `<a href="${i === 1 ? `${industry.slug}.html` : `${industry.slug}-${i}.html`}">Previous page</a>`,
        );
      if (i < chunks.length - 1) nav.push(`<a href="${industry.slug}-${i + 2}.html">Next page</a>`);
      const title = `${industry.label} — Open Business Register${chunks.length > 1 ? ` (page ${i + 1})` : ""}`;
      writePage(
        path,
        htmlPage({
          title,
          description: `Registered organisations in ${industry.label.toLowerCase()}.`,
          body: [
            "<header><p>Open Business Register</p>",
            `<nav>${nav.join(" | ")}</nav></header>`,
            "<main>",
            `<h1>${industry.label}</h1>`,
            `<p>Organisations registered under ${industry.label.toLowerCase()}, with the details they filed. A dash means not filed.</p>`,
            "<table>",
            "<thead><tr><th>Organisation</th><th>City</th><th>Country</th><th>Founded</th><th>Employees</th></tr></thead>",
            `<tbody>\n${rows.join("\n")}\n</tbody>`,
            "</table>",
            "</main>",
            "<footer><p>The Open Business Register is a fictional directory of demo data.</p></footer>",
          ].join("\n"),
        }),
      );
    });
  }
  const list = INDUSTRIES.map((i) => `<li><a href="${i.slug}.html">${i.label}</a></li>`).join("\n");
  writePage(
    "directory/index.html",
    htmlPage({
      title: "Open Business Register",
      body: `<header><p>Open Business Register</p></header>\n<main>\n<h1>Browse by industry</h1>\n<ul>\n${list}\n</ul>\n</main>`,
    }),
  );
}

// ---------------------------------------------------------------------------------------------
// Trade press: a news site whose articles carry some of the decoys

const PRESS_DOMAIN = "trade-ledger.example";

function buildPress(articles: { slug: string; title: string; paragraphs: string[] }[]): void {
  for (const article of articles) {
    writePage(
      `${PRESS_DOMAIN}/articles/${article.slug}.html`,
      htmlPage({
        title: `${article.title} | The Trade Ledger`,
        head: jsonLdScript({
          "@context": "https://schema.org",
          "@type": "NewsArticle",
          headline: article.title,
          datePublished: "2024-05-14",
          publisher: { "@type": "Organization", name: "The Trade Ledger" },
        }),
        body: [
          '<header><p><a href="../index.html">The Trade Ledger</a></p></header>',
          "<main>\n<article>",
          `<h1>${escapeHtml(article.title)}</h1>`,
          ...article.paragraphs.map((p) => `<p>${p}</p>`),
          "</article>\n</main>",
        ].join("\n"),
      }),
    );
  }
  writePage(
    `${PRESS_DOMAIN}/index.html`,
    htmlPage({
      title: "The Trade Ledger",
      body: [
        "<header><p>The Trade Ledger</p></header>",
        "<main>",
        "<h1>Latest stories</h1>",
        `<ul>\n${articles.map((a) => `<li><a href="articles/${a.slug}.html">${escapeHtml(a.title)}</a></li>`).join("\n")}\n</ul>`,
        "</main>",
      ].join("\n"),
    }),
  );
}

function planDecoys(orgs: Org[]): {
  byHost: Map<Org, string[]>;
  articles: { slug: string; title: string; paragraphs: string[] }[];
  decoys: Decoy[];
} {
  const byHost = new Map<Org, string[]>();
  const articles: { slug: string; title: string; paragraphs: string[] }[] = [];
  const decoys: Decoy[] = [];
  // The near-duplicate names are decoy targets on purpose.
  const hard = ["Northwind Analytic Partners", "Granite Peak Capital"].map((n) =>
    orgs.find((o) => o.name === n)!,
  );
  const eligible = rng.shuffle(orgs.filter((o) => o.case !== "directory" && !hard.includes(o)));
  const targets = [...hard, ...eligible.slice(0, 18)];
  targets.forEach((target, i) => {
    const column: Decoy["column"] = target.nulls.includes("employees")
      ? "employees"
      : rng.pick(["employees", "employees", "founded", "city"] as const);
    const inPress = i % 2 === 1;
    if (inPress) {
      const wrong =
        column === "employees"
          ? String(wrongEmployees(target, []))
          : column === "founded"
            ? String(wrongFounded(target, []))
            : rng.pick(PLACES.filter((p) => p.city !== target.city)).city;
      const slug = `${target.industry.slug}-${["outlook", "roundup", "market-report", "briefing", "trends"][i % 5]!}-${i}`;
      const url = `${PRESS_DOMAIN}/articles/${slug}.html`;
      const decoy: Decoy = { target, column, wrong, url };
      const label = target.industry.label.toLowerCase();
      const title = rng.pick([
        `What next for ${label}?`,
        `A busy quarter in ${label}`,
        `${target.industry.label}: the independents fight back`,
        `Ten things we learned about ${label} this spring`,
      ]);
      articles.push({
        slug,
        title,
        paragraphs: [
          rng.pick([
            "Smaller firms say demand held up better than expected, despite rising costs.",
            "Owners we spoke to were cautiously optimistic about the year ahead.",
            "Several firms told us they are investing in training rather than machines.",
          ]),
          decoySentence(decoy, "press"),
          `Reporting by ${rng.pick(FIRST_NAMES)} ${rng.pick(SURNAMES)}, who has covered ${label} for the Ledger since the spring.`,
          "Whether the trend lasts will depend on interest rates and on how quickly customers pay. Several owners said they would hold off on new hires until the autumn.",
        ],
      });
      decoys.push(decoy);
    } else {
      const host = rng.pick(
        orgs
          .filter(
            (o) => o !== target && o.hasNews && o.industry === target.industry && !byHost.has(o),
          )
          .concat(orgs.filter((o) => o !== target && o.hasNews && !byHost.has(o)))
          .slice(0, 6),
      );
      const wrong =
        column === "employees"
          ? String(wrongEmployees(target, [host]))
          : column === "founded"
            ? String(wrongFounded(target, [host]))
            : rng.pick(
                PLACES.filter(
                  (p) =>
                    p.city !== target.city && p.city !== host.city && p.country !== host.country,
                ),
              ).city;
      const decoy: Decoy = { target, column, wrong, host, url: `${host.domain}/news.html` };
      byHost.set(host, [`${rng.pick(host.industry.news)} ${decoySentence(decoy, "we")}`]);
      decoys.push(decoy);
    }
  });
  for (const decoy of decoys) decoy.target.decoys[decoy.column].push(decoy.url);
  return { byHost, articles, decoys };
}

// ---------------------------------------------------------------------------------------------
// Output files

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** JSON laid out as prettier lays it out (objects expanded, short arrays on one line). */
function prettyJson(value: Json, indent = "", width = 100, prefixLength = 0): string {
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    const flat = `[${value.map((v) => JSON.stringify(v)).join(", ")}]`;
    const scalars = value.every((v) => v === null || typeof v !== "object");
    if (scalars && indent.length + prefixLength + flat.length + 1 <= width) return flat;
    const inner = indent + "  ";
    return `[\n${value.map((v) => inner + prettyJson(v, inner, width)).join(",\n")}\n${indent}]`;
  }
  if (value !== null && typeof value === "object") {
    const entries = Object.entries(value);
    if (entries.length === 0) return "{}";
    const inner = indent + "  ";
    const lines = entries.map(([k, v]) => {
      const key = `${JSON.stringify(k)}: `;
      return inner + key + prettyJson(v, inner, width, key.length);
    });
    return `{\n${lines.join(",\n")}\n${indent}}`;
  }
  return JSON.stringify(value);
}

function csvField(text: string): string {
  return /[",\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function main(): void {
  const orgs = buildOrganisations();
  const directory = planDirectory(orgs);
  const { byHost, articles, decoys } = planDecoys(orgs);
  for (const org of orgs) {
    buildSite(org);
    buildNews(org, byHost.get(org) ?? []);
  }
  buildDirectory(directory);
  buildPress(articles);

  rmSync(CORPUS_DIR, { recursive: true, force: true });
  let corpusBytes = 0;
  let largest = 0;
  let smallest = Infinity;
  for (const [path, html] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
    const full = join(CORPUS_DIR, path);
    mkdirSync(dirname(full), { recursive: true });
    writeFileSync(full, html);
    const bytes = Buffer.byteLength(html);
    corpusBytes += bytes;
    largest = Math.max(largest, bytes);
    smallest = Math.min(smallest, bytes);
  }

  writeFileSync(
    join(DEMO_DIR, "organisations.csv"),
    ["name,domain", ...orgs.map((o) => `${csvField(o.name)},${o.domain}`)].join("\n") + "\n",
  );

  const truth: Record<string, Json> = {};
  for (const org of orgs) {
    const columns: Record<string, Json> = {};
    for (const column of COLUMNS) {
      const evidence = org.evidence[column];
      const value: Json =
        column === "industry"
          ? org.industry.label
          : column === "founded"
            ? org.founded
            : column === "employees"
              ? org.employees
              : column === "city"
                ? org.city
                : org.country;
      if ((value === null) !== (evidence.size === 0)) {
        throw new Error(
          `${org.domain} ${column}: value ${String(value)} with ${evidence.size} pages`,
        );
      }
      const kinds = new Set(evidence.values());
      const where =
        value === null
          ? "none"
          : (["json-ld", "microdata", "javascript", "prose", "directory"] as const).find((k) =>
              kinds.has(k),
            )!;
      const entry: Record<string, Json> = { value, urls: [...evidence.keys()].sort(), where };
      if (org.decoys[column].length > 0) entry.decoys = org.decoys[column];
      columns[column] = entry;
    }
    truth[org.domain] = columns;
  }
  writeFileSync(join(DEMO_DIR, "truth.json"), prettyJson(truth) + "\n");

  // Counts
  const countBy = <T>(items: T[], key: (item: T) => string): [string, number][] => {
    const counts = new Map<string, number>();
    for (const item of items) counts.set(key(item), (counts.get(key(item)) ?? 0) + 1);
    return [...counts].sort((a, b) => b[1] - a[1]);
  };
  const lines: string[] = [];
  const section = (title: string, rows: [string, number | string][]) => {
    lines.push(`${title}:`, "");
    for (const [k, v] of rows) lines.push(`- ${k}: ${v}`);
    lines.push("");
  };
  section(
    "Organisations by case (where the founded/employees/city/country facts live)",
    countBy(orgs, (o) => o.case),
  );
  section("JSON-LD placement", [
    ["on index.html", orgs.filter((o) => o.case === "json-ld" && o.jsonLdOn === "index").length],
    ["on about.html", orgs.filter((o) => o.case === "json-ld" && o.jsonLdOn === "about").length],
    [
      "as an @graph with WebSite and WebPage.mainEntity",
      orgs.filter((o) => o.case === "json-ld" && o.jsonLdGraph).length,
    ],
    [
      "numberOfEmployees a range (exact count in prose only)",
      orgs.filter((o) => o.employeesRange).length,
    ],
    ["no foundingDate (year in prose only)", orgs.filter((o) => o.noFoundingDate).length],
  ]);
  section("Other cases", [
    ["industry also in schema.org knowsAbout", orgs.filter((o) => o.knowsAbout).length],
    ["some facts on no page (truth null)", orgs.filter((o) => o.nulls.length > 0).length],
    [
      "decoy mentions with a wrong value (news pages of other organisations)",
      decoys.filter((d) => d.host).length,
    ],
    [
      "decoy mentions with a wrong value (trade-press articles)",
      decoys.filter((d) => !d.host).length,
    ],
  ]);
  for (const column of COLUMNS) {
    const rows = countBy(orgs, (o) => {
      const entry = (truth[o.domain] as Record<string, Record<string, Json>>)[column]!;
      return entry.where as string;
    });
    section(`\`${column}\` by where (the strongest kind of evidence)`, rows);
  }
  section(
    "Columns whose true value is in structured data (JSON-LD or microdata on index.html or about.html: what check-demo-data.ts expects valuesFromStructuredData to recover)",
    COLUMNS.map((column): [string, number] => [
      column,
      orgs.filter((o) =>
        [...o.evidence[column].values()].some((h) => h === "json-ld" || h === "microdata"),
      ).length,
    ]),
  );
  section("Corpus", [
    ["pages", files.size],
    ["organisation sites", orgs.length],
    ["directory pages", [...files.keys()].filter((p) => p.startsWith("directory/")).length],
    ["trade-press pages", [...files.keys()].filter((p) => p.startsWith(PRESS_DOMAIN)).length],
    ["total size", `${(corpusBytes / 1024).toFixed(0)} KB`],
    ["page size", `${smallest}–${largest} bytes`],
  ]);
  const counts = lines.join("\n").trimEnd();
  console.log(counts);
  writeFileSync(join(DEMO_DIR, "README.md"), readme(counts));
}

function readme(counts: string): string {
  return `# Demo data

Bundled data for Gleaner's offline demo (\`npm start\` with no API keys) and the ground truth for
the evidence-recall benchmark. Everything here is fictional and generated; every domain uses the
reserved \`.example\` TLD.

- \`organisations.csv\`: the rows to enrich, \`name,domain\`, ${ORGANISATION_COUNT} organisations. Hard
  cases: near-identical names (Northwind Analytics / Northwind Analytic Partners, Granite Peak
  Capital / Granite Peak Capital Partners), accents, apostrophes and ampersands.
- \`corpus/\`: the web the demo searches and crawls. \`corpus/<domain>/\` is each organisation's
  site (\`index.html\`, \`about.html\`, and \`news.html\` and/or \`careers.html\`);
  \`corpus/directory/\` is a third-party register listing every organisation by industry;
  \`corpus/${PRESS_DOMAIN}/\` is a trade-press site.
- \`truth.json\`: per domain, per output column (\`industry\`, \`founded\`, \`employees\`, \`city\`,
  \`country\`): \`value\` (\`null\` when no page holds it), \`urls\` (corpus paths of every page that
  holds the true value), \`where\` (the strongest kind of evidence: \`json-ld\`, \`microdata\`,
  \`javascript\`, \`prose\`, \`directory\`, or \`none\`) and, when some page states a wrong value
  about the organisation, \`decoys\` (those pages' paths).
- \`golden.csv\`: the golden set of \`npm run eval\` (\`gleaner eval organisations\`): every third
  organisation (100 rows), \`name,domain\` and the known \`industry\`, \`founded\`, \`employees\`,
  \`city\`, \`country\` from \`truth.json\` (empty when no page holds the fact). Written by
  \`node --import tsx demo/write-golden-set.ts\`.

Industries (the \`industry\` values): ${INDUSTRIES.map((i) => i.label).join(", ")}.

## Regenerating

\`\`\`sh
node --import tsx demo/generate-demo-data.ts   # rewrites corpus/, organisations.csv, truth.json, README.md
node --import tsx demo/check-demo-data.ts      # checks truth.json against the pages
\`\`\`

The generator is deterministic (seeded PRNG, seed \`0x${SEED.toString(16)}\`): the same code writes the
same files. The check runs Gleaner's own page extraction (\`extractPageContent\`,
\`valuesFromStructuredData\`) on every page and verifies that each page named in \`truth.json\` holds
the value (in its text, its structured data, or once its script has run), that no other page of
the organisation's own site holds it, that decoy pages hold a wrong value only, and that only the
JavaScript about pages need the browser.

## Distribution

${counts}
`;
}

main();
